package group

import (
	"bytes"
	"encoding/binary"
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
// the snapshot's index (hashicorp/raft#697, #704). third_party's patch
// applies Raft's rules 6 and 7: keep the log after the snapshot only if
// it holds the snapshot's last entry.
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
	cases := []struct {
		name string
		// held: the follower's log before the snapshot, entries 1..held of term 1.
		held uint64
		// snapTerm: the term of the snapshot's last entry, index 10.
		snapTerm uint64
		// next: the leader's request after the snapshot.
		next raft.AppendEntriesRequest
	}{
		{name: "log past the snapshot, in conflict with it", held: 12, snapTerm: 2,
			next: raft.AppendEntriesRequest{PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 12, Entries: []*raft.Log{
				{Index: 11, Term: 2, Type: raft.LogCommand}, {Index: 12, Term: 2, Type: raft.LogCommand}}}},
		{name: "log past the snapshot, holding its last entry", held: 12, snapTerm: 1,
			next: raft.AppendEntriesRequest{PrevLogEntry: 12, PrevLogTerm: 1, LeaderCommitIndex: 12}},
		{name: "log behind the snapshot", held: 5, snapTerm: 2,
			next: raft.AppendEntriesRequest{PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 12, Entries: []*raft.Log{
				{Index: 11, Term: 2, Type: raft.LogCommand}, {Index: 12, Term: 2, Type: raft.LogCommand}}}},
	}
	for store, open := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				logs := open(t)
				fsm, leader := followerWithLog(t, logs, tc.held)
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
				wantTerm := tc.snapTerm // the entries after the snapshot are the leader's, or the kept ones
				for i := uint64(11); i <= 12; i++ {
					var l raft.Log
					if err := logs.GetLog(i, &l); err != nil || l.Term != wantTerm {
						t.Fatalf("entry %d %+v (%v): want term %d", i, l, err, wantTerm)
					}
				}
			})
		}
	}
}
