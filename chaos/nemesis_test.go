package chaos

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"orderly/wire"
)

// fakeLeader answers membership calls as a leader whose removal of a
// member was committed although the call failed: every RemoveMember is
// refused with "not a member" (what a retry after a lost leadership
// sees). It records the AddMember calls.
type fakeLeader struct {
	mu    sync.Mutex
	added []string
}

func (f *fakeLeader) handle(_ context.Context, _ int32, req wire.Message) wire.Message {
	switch r := req.(type) {
	case wire.RemoveMember:
		return wire.Errorf(wire.CodeBadRequest, "remove member: %q is not a member", r.ID)
	case wire.AddMember:
		f.mu.Lock()
		f.added = append(f.added, r.ID+"@"+r.RaftAddr)
		f.mu.Unlock()
		return wire.OK{}
	}
	return wire.Errorf(wire.CodeBadRequest, "unexpected %s", req.Type())
}

// fakeTarget is a cluster of three whose leader is n1, reached at addr.
type fakeTarget struct{ addr string }

func (t fakeTarget) nodes() []string               { return []string{"n1", "n2", "n3"} }
func (t fakeTarget) raftAddr(id string) string     { return id + ":7000" }
func (t fakeTarget) clientAddrs() []string         { return []string{t.addr} }
func (t fakeTarget) balancer() string              { return t.addr }
func (t fakeTarget) leader(context.Context) string { return "n1" }
func (t fakeTarget) kill(string) error             { return nil }
func (t fakeTarget) restart(string) error          { return nil }
func (t fakeTarget) pause(string) error            { return nil }
func (t fakeTarget) resume(string) error           { return nil }
func (t fakeTarget) cut(string) error              { return nil }
func (t fakeTarget) heal(string) error             { return nil }
func (t fakeTarget) healAll() error                { return nil }

// A member fault whose removal failed must still add the node back: the
// removal may have been committed (the 10-minute run of 2026-11-25 kept
// going with two voters after exactly this).
func TestMemberFaultAddsBackAfterAFailedRemoval(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leader := &fakeLeader{}
	srv := wire.Serve(ln, leader.handle, wire.ServerOptions{})
	defer srv.Close()
	n := &nemesis{t: fakeTarget{addr: ln.Addr().String()}, rng: rand.New(rand.NewPCG(1, 2)), start: time.Now()}
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
