package failpoint

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
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
