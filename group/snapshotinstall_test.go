package group

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// TestInstalledSnapshotKeepsTheLogConsistent: a follower installs a
// snapshot of entries 1-10 and is then sent the entries after it, on
// raft-wal (a MonotonicLogStore, as orderd runs) and on a store that is
// not one. hashicorp/raft v1.8.0 left a follower whose log ran past the
// snapshot unable to take them: raft-wal's log was emptied while Raft
// still counted its old last entry, so a request after the snapshot was
// refused (and one matching that stale entry made it panic applying
// entries it no longer had); other stores kept the conflicting entry at
// the snapshot's index, and kept old entries below a snapshot beyond the
// log (hashicorp/raft#697, #704). third_party's patch applies Raft's
// rules 6 and 7: keep the log after the snapshot, and the configurations
// in it, only if it holds the snapshot's last entry; else discard it all.
func TestInstalledSnapshotKeepsTheLogConsistent(t *testing.T) {
	stores := map[string]func(t *testing.T) raft.LogStore{
		"raft-wal": func(t *testing.T) raft.LogStore {
			w, err := wal.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() })
			return w
		},
		"inmem": func(*testing.T) raft.LogStore { return raft.NewInmemStore() },
	}
	fourVoters := raft.Configuration{Servers: append(slices.Clone(threeVoters.Servers),
		raft.Server{ID: "fourth", Address: "fourth", Suffrage: raft.Voter})}
	addsFourth := termOneLog(12)
	addsFourth[10].Type, addsFourth[10].Data = raft.LogConfiguration, raft.EncodeConfiguration(fourVoters) // entry 11
	termOne := func(from, to uint64) []*raft.Log { return termOneLog(to)[from-1:] }
	termTwo := []*raft.Log{{Index: 11, Term: 2, Type: raft.LogCommand}, {Index: 12, Term: 2, Type: raft.LogCommand}}
	cases := []struct {
		name string
		held []*raft.Log // the follower's log before the snapshot
		// trailing: entries kept before a snapshot when the log is
		// compacted (raft's TrailingLogs).
		trailing uint64
		// snapTerm: the term of the snapshot's last entry, index 10.
		snapTerm uint64
		// next: the leader's request after the snapshot.
		next raft.AppendEntriesRequest
		// kept: the entries the follower still holds, first to last.
		kept [2]uint64
		// voters: its configuration afterwards.
		voters int
	}{
		{name: "log past the snapshot, in conflict with it", held: termOneLog(12), snapTerm: 2, trailing: 1000,
			next: raft.AppendEntriesRequest{PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 12, Entries: termTwo},
			kept: [2]uint64{11, 12}, voters: 3},
		{name: "log past the snapshot, holding its last entry", held: termOneLog(12), snapTerm: 1, trailing: 0,
			next: raft.AppendEntriesRequest{PrevLogEntry: 10, PrevLogTerm: 1, LeaderCommitIndex: 12, Entries: termOne(11, 12)},
			kept: [2]uint64{10, 12}, voters: 3},
		{name: "log past the snapshot, holding its last entry, then a new member", held: addsFourth, snapTerm: 1, trailing: 0,
			next: raft.AppendEntriesRequest{PrevLogEntry: 12, PrevLogTerm: 1, LeaderCommitIndex: 12},
			kept: [2]uint64{10, 12}, voters: 4},
		{name: "log behind the snapshot, kept entries trailing", held: termOneLog(5), snapTerm: 2, trailing: 1000,
			next: raft.AppendEntriesRequest{PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 12, Entries: termTwo},
			kept: [2]uint64{11, 12}, voters: 3},
	}
	for store, open := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				logs := open(t)
				r, fsm, leader := followerWithLog(t, logs, tc.held, tc.trailing)
				header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("new"), Addr: []byte("new")}

				var snap bytes.Buffer
				binary.Write(&snap, binary.BigEndian, uint64(10)) //nolint:errcheck // a bytes.Buffer takes it
				install := raft.InstallSnapshotRequest{RPCHeader: header, SnapshotVersion: raft.SnapshotVersionMax, Term: 2,
					LastLogIndex: 10, LastLogTerm: tc.snapTerm, Configuration: raft.EncodeConfiguration(threeVoters),
					ConfigurationIndex: 1, Size: int64(snap.Len())}
				var installed raft.InstallSnapshotResponse
				if err := leader.InstallSnapshot("old", "old", &install, &installed, &snap); err != nil || !installed.Success {
					t.Fatalf("install snapshot: %v %+v", err, installed)
				}

				next := tc.next
				next.RPCHeader, next.Term = header, 2
				var resp raft.AppendEntriesResponse
				if err := leader.AppendEntries("old", "old", &next, &resp); err != nil {
					t.Fatal(err)
				}
				if !resp.Success {
					t.Fatalf("after the snapshot the follower refused %+v: %+v", next, resp)
				}
				deadline := time.Now().Add(5 * time.Second)
				for fsm.last() < 12 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if got := fsm.last(); got != 12 {
					t.Fatalf("applied up to %d: want 12", got)
				}
				first, _ := logs.FirstIndex()
				last, _ := logs.LastIndex()
				if first != tc.kept[0] || last != tc.kept[1] {
					t.Fatalf("the log holds %d-%d: want %d-%d", first, last, tc.kept[0], tc.kept[1])
				}
				for i := uint64(11); i <= 12; i++ {
					var l raft.Log
					if err := logs.GetLog(i, &l); err != nil || l.Term != tc.snapTerm {
						t.Fatalf("entry %d %+v (%v): want term %d, the leader's", i, l, err, tc.snapTerm)
					}
				}
				f := r.GetConfiguration()
				if err := f.Error(); err != nil || len(f.Configuration().Servers) != tc.voters {
					t.Fatalf("configuration %+v (%v): want %d voters", f.Configuration(), err, tc.voters)
				}
			})
		}
	}
}
