package failpoint

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// fakeLeader answers membership calls as a leader whose removal of a
// member was committed although the call failed: every RemoveMember is
// refused with "not a member" (what a retry after a lost leadership
// sees). It records the AddMember calls.
type fakeLeader struct {
	mu       sync.Mutex
	added    []string
	statuses int
}

func (f *fakeLeader) handle(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
	switch r := req.(type) {
	case wire.RemoveMember:
		return wire.Errorf(wire.CodeBadRequest, "remove member: %q is not a member", r.ID)
	case wire.Status:
		// The leader has committed 100; a rebuilt node applies 30 more
		// each time it is asked.
		f.mu.Lock()
		f.statuses++
		applied := uint64(30 * f.statuses)
		f.mu.Unlock()
		return wire.StatusInfo{ID: "n1", Role: "leader", Term: 2, CommitIndex: 100, AppliedIndex: applied}
	case wire.AddMember:
		f.mu.Lock()
		f.added = append(f.added, r.ID+"@"+r.RaftAddr)
		f.mu.Unlock()
		return wire.OK{}
	}
	return wire.Errorf(wire.CodeBadRequest, "unexpected %s", req.Type())
}

// fakeTarget is a cluster of three whose leader is n1, reached at addr;
// every node answers at addr. It logs wipes and rebuilds.
type fakeTarget struct {
	addr string
	log  *[]string
}

func (t fakeTarget) Nodes() []string               { return []string{"n1", "n2", "n3"} }
func (t fakeTarget) RaftAddr(id string) string     { return id + ":7000" }
func (t fakeTarget) ClientAddrs() []string         { return []string{t.addr} }
func (t fakeTarget) Balancer() string              { return t.addr }
func (t fakeTarget) Leader(context.Context) string { return "n1" }
func (t fakeTarget) Kill(string) error             { return nil }
func (t fakeTarget) Restart(string) error          { return nil }
func (t fakeTarget) Pause(string) error            { return nil }
func (t fakeTarget) Resume(string) error           { return nil }
func (t fakeTarget) Cut(string) error              { return nil }
func (t fakeTarget) Heal(string) error             { return nil }
func (t fakeTarget) HealAll() error                { return nil }
func (t fakeTarget) ClientAddr(string) string      { return t.addr }
func (t fakeTarget) Wipe(id string) error          { *t.log = append(*t.log, "wipe "+id); return nil }
func (t fakeTarget) Rebuild(id string) error       { *t.log = append(*t.log, "rebuild "+id); return nil }
func (t fakeTarget) LegacyAddr() string            { return "" }
func (t fakeTarget) SlowDisk(string, bool) error   { return nil }
func (t fakeTarget) TLS() func(string) *tls.Config { return nil }
func (t fakeTarget) FillDisk(string) error         { return nil }
func (t fakeTarget) FreeDisk(string) error         { return nil }

// newFakeNemesis serves a fakeLeader on loopback until the test ends and
// returns it with a nemesis aimed at it; target calls go to log.
func newFakeNemesis(t *testing.T, log *[]string) (*fakeLeader, *Nemesis) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leader := &fakeLeader{}
	srv := serve.Orderly(ln, leader.handle, serve.Options{})
	t.Cleanup(srv.Close)
	return leader, &Nemesis{t: fakeTarget{addr: ln.Addr().String(), log: log}, rng: rand.New(rand.NewPCG(1, 2)), start: time.Now()}
}

// A member fault whose removal failed must still add the node back: the
// removal may have been committed (the 10-minute run of 2026-11-25 kept
// going with two voters after exactly this).
func TestMemberFaultAddsBackAfterAFailedRemoval(t *testing.T) {
	var log []string
	leader, n := newFakeNemesis(t, &log)
	f := n.inject(context.Background(), Member, time.Millisecond)
	if !strings.Contains(f.Err, "not a member") {
		t.Fatalf("fault error %q, want the refused removal", f.Err)
	}
	if f.Target == "n1" {
		t.Fatalf("member fault targeted the leader")
	}
	leader.mu.Lock()
	defer leader.mu.Unlock()
	if want := f.Target + "@" + f.Target + ":7000"; len(leader.added) != 1 || leader.added[0] != want {
		t.Fatalf("AddMember calls %v, want one for %s", leader.added, want)
	}
}

// A wipe fault kills and wipes a node, then rebuilds it and is healed only
// once the node has applied what the leader had committed.
func TestWipeFaultWaitsForCatchUp(t *testing.T) {
	var log []string
	leader, n := newFakeNemesis(t, &log)
	f := n.inject(context.Background(), Wipe, time.Millisecond)
	if f.Err != "" {
		t.Fatalf("wipe fault: %s", f.Err)
	}
	if want := []string{"wipe " + f.Target, "rebuild " + f.Target}; strings.Join(log, ",") != strings.Join(want, ",") {
		t.Fatalf("target calls %v, want %v", log, want)
	}
	leader.mu.Lock()
	defer leader.mu.Unlock()
	if leader.statuses < 4 { // the leader's commit 100, then the node's 60, 90, 120
		t.Fatalf("healed after %d status calls, before the node could have caught up", leader.statuses)
	}
}

// fakeShards answers the calls of a replica move as a cluster of two
// shards on n1..n3 whose first promotion is refused: a move cut short
// after its first step. It logs every step.
type fakeShards struct {
	mu      sync.Mutex
	addr    string
	shards  []wire.ShardInfo
	refused bool
	steps   []string
}

func (f *fakeShards) handle(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r := req.(type) {
	case wire.Members:
		var ms []wire.Member
		for _, id := range []string{"n1", "n2", "n3"} {
			ms = append(ms, wire.Member{ID: id, RaftAddr: id + ":7000", ClientAddr: f.addr, Voter: true})
		}
		return wire.MemberList{Members: ms}
	case wire.Shards:
		m := wire.ShardMap{}
		for _, s := range f.shards {
			s.Replicas = slices.Clone(s.Replicas)
			m.Shards = append(m.Shards, s)
		}
		return m
	case wire.ShardMember:
		f.steps = append(f.steps, fmt.Sprintf("%d %d %s", r.Shard, r.Op, r.ID))
		s := &f.shards[r.Shard]
		i := slices.IndexFunc(s.Replicas, func(rp wire.Replica) bool { return rp.ID == r.ID })
		switch r.Op {
		case wire.ShardAddNonvoter:
			s.Replicas = append(s.Replicas, wire.Replica{ID: r.ID})
		case wire.ShardPromote:
			if !f.refused {
				f.refused = true
				return wire.Errorf(wire.CodeBadRequest, "shard %d: %s has not caught up", r.Shard, r.ID)
			}
			s.Replicas[i].Voter = true
		case wire.ShardStepDown:
			s.Leader = s.Replicas[(i+1)%len(s.Replicas)].ID
		case wire.ShardRemove:
			s.Replicas = slices.Delete(s.Replicas, i, i+1)
		}
		s.Epoch++
		return wire.OK{}
	}
	return wire.Errorf(wire.CodeBadRequest, "unexpected %s", req.Type())
}

// TestMoveCutShortIsRunAgain: a move that fails at a step is run again by
// the next move fault, the same move (not a new draw), to its end.
func TestMoveCutShortIsRunAgain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	f := &fakeShards{addr: addr, shards: []wire.ShardInfo{
		{ID: 0, SlotHi: 8192, Epoch: 1, Leader: "n1", LeaderAddr: addr, Replicas: []wire.Replica{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}}},
		{ID: 1, SlotLo: 8192, SlotHi: 16384, Epoch: 1, Leader: "n2", LeaderAddr: addr, Replicas: []wire.Replica{{ID: "n2", Voter: true}, {ID: "n3", Voter: true}}},
	}}
	srv := serve.Orderly(ln, f.handle, serve.Options{})
	t.Cleanup(srv.Close)
	var log []string
	n := &Nemesis{t: fakeTarget{addr: addr, log: &log}, rng: rand.New(rand.NewPCG(1, 2)), start: time.Now(), logf: t.Logf}

	err = n.shardChange(context.Background(), Move)
	if err == nil || !strings.Contains(err.Error(), "to be run again") || n.unfinished == nil {
		t.Fatalf("first move: %v, unfinished %+v; want the refused promotion, kept to be run again", err, n.unfinished)
	}
	mv := *n.unfinished
	if err := n.shardChange(context.Background(), Move); err != nil {
		t.Fatalf("the move run again: %v", err)
	}
	if n.unfinished != nil {
		t.Fatalf("a finished move is still kept: %+v", n.unfinished)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shards[mv.shard]
	holds := func(id string) bool {
		return slices.ContainsFunc(s.Replicas, func(r wire.Replica) bool { return r.ID == id && r.Voter })
	}
	if !holds(mv.to) || slices.ContainsFunc(s.Replicas, func(r wire.Replica) bool { return r.ID == mv.from }) {
		t.Fatalf("shard %d after moving it from %s to %s: %+v (steps %v)", mv.shard, mv.from, mv.to, s.Replicas, f.steps)
	}
	adds := 0
	for _, st := range f.steps {
		if strings.Contains(st, fmt.Sprintf(" %d ", wire.ShardAddNonvoter)) {
			adds++
		}
	}
	if adds != 1 {
		t.Fatalf("steps %v: want one replica added, by the first run only", f.steps)
	}
}
