package group

import (
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// appliedFSM records the indexes it applies.
type appliedFSM struct {
	mu      sync.Mutex
	applied []uint64
}

func (f *appliedFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, l.Index)
	return nil
}

func (f *appliedFSM) last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return 0
	}
	return f.applied[len(f.applied)-1]
}

func (f *appliedFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, io.ErrUnexpectedEOF }

// Restore takes a snapshot as the index applied up to (8 bytes).
func (f *appliedFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var upTo uint64
	if err := binary.Read(rc, binary.BigEndian, &upTo); err != nil {
		return err
	}
	f.mu.Lock()
	f.applied = append(f.applied, upTo)
	f.mu.Unlock()
	return nil
}

// TestDeposedLeaderDoesNotApplyItsUncommittedTail is the chaos run of
// 2026-12-07 (docs/chaos/...-sharded30-FAIL-analysis.md) in miniature: a
// node holds entries 1-12 of term 1, of which 1-10 are committed and 11-12
// are a deposed leader's tail that no quorum holds. The new leader (term
// 2) has 1-10 and a commit index of 12 in its own log, and its first
// request matches entry 10 and carries no entries. hashicorp/raft v1.8.0
// took its commit index as min(leader's commit, its own last index) and
// applied 11 and 12, entries the new leader then overwrote: the node's
// state was no longer the group's. Raft's rule is the index of the last
// entry the request matched (third_party/hashicorp-raft carries the fix).
func TestDeposedLeaderDoesNotApplyItsUncommittedTail(t *testing.T) {
	logs := raft.NewInmemStore()
	_, fsm, leader := followerWithLog(t, logs, termOneLog(12), 0)

	// The new leader's requests: the first matches entry 10 and carries
	// nothing; the second overwrites 11 with its own entry of term 2.
	send := func(req raft.AppendEntriesRequest) raft.AppendEntriesResponse {
		t.Helper()
		var resp raft.AppendEntriesResponse
		if err := leader.AppendEntries("old", "old", &req, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("new"), Addr: []byte("new")}
	resp := send(raft.AppendEntriesRequest{RPCHeader: header, Term: 2, PrevLogEntry: 10, PrevLogTerm: 1, LeaderCommitIndex: 12})
	if !resp.Success {
		t.Fatalf("a request that matches entry 10 was refused: %+v", resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fsm.last() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong apply to show
	if got := fsm.last(); got != 10 {
		t.Fatalf("applied up to %d after a request that matched up to 10: want 10", got)
	}
	resp = send(raft.AppendEntriesRequest{RPCHeader: header, Term: 2, PrevLogEntry: 10, PrevLogTerm: 1, LeaderCommitIndex: 12,
		Entries: []*raft.Log{{Index: 11, Term: 2, Type: raft.LogCommand, Data: []byte("new 11")}, {Index: 12, Term: 2, Type: raft.LogCommand, Data: []byte("new 12")}}})
	if !resp.Success {
		t.Fatalf("the new leader's entries were refused: %+v", resp)
	}
	for fsm.last() < 12 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var l raft.Log
	if err := logs.GetLog(11, &l); err != nil || l.Term != 2 || fsm.last() != 12 {
		t.Fatalf("entry 11 %+v (%v), applied up to %d: want the new leader's entries applied", l, err, fsm.last())
	}
}

var threeVoters = raft.Configuration{Servers: []raft.Server{
	{ID: "old", Address: "old", Suffrage: raft.Voter},
	{ID: "new", Address: "new", Suffrage: raft.Voter},
	{ID: "third", Address: "third", Suffrage: raft.Voter},
}}

// termOneLog is entries 1..n of term 1, the first the configuration.
func termOneLog(n uint64) []*raft.Log {
	var entries []*raft.Log
	for i := uint64(1); i <= n; i++ {
		l := &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}}
		if i == 1 {
			l.Type, l.Data = raft.LogConfiguration, raft.EncodeConfiguration(threeVoters)
		}
		entries = append(entries, l)
	}
	return entries
}

// followerWithLog starts a follower "old" whose log holds entries (none
// committed) and returns it, its FSM and the transport of "new",
// connected to it. It keeps trailing entries before a snapshot when it
// compacts.
func followerWithLog(t *testing.T, logs raft.LogStore, entries []*raft.Log, trailing uint64) (*raft.Raft, *appliedFSM, *raft.InmemTransport) {
	t.Helper()
	if err := logs.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}
	stable := raft.NewInmemStore()
	if err := stable.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	_, self := raft.NewInmemTransport("old")
	_, leader := raft.NewInmemTransport("new")
	self.Connect("new", leader)
	leader.Connect("old", self)
	cfg := raft.DefaultConfig()
	cfg.LocalID = "old"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = time.Hour, time.Hour // it only follows here
	cfg.LeaderLeaseTimeout = time.Hour
	cfg.TrailingLogs = trailing
	cfg.Logger = hclog.NewNullLogger()
	fsm := &appliedFSM{}
	r, err := raft.NewRaft(cfg, fsm, logs, stable, raft.NewInmemSnapshotStore(), self)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown().Error() }) //nolint:errcheck // the test is over
	return r, fsm, leader
}
