package lb

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// fakeNode answers Status with st and reads with a record (or, for a node
// without Raft state, Unavailable, as orderd does); it counts reads.
func fakeNode(t *testing.T, st wire.StatusInfo, reads *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve.Orderly(ln, func(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
		if _, ok := req.(wire.Status); ok {
			return st
		}
		if _, ok := req.(wire.Shards); ok { // as a node of a single-group release
			return wire.Errorf(wire.CodeBadRequest, "decode: wire: unknown message type 28")
		}
		reads.Add(1)
		if st.Term == 0 {
			return wire.Errorf(wire.CodeUnavailable, "no Raft state yet")
		}
		return wire.Record{CustomerRecord: wire.CustomerRecord{CustomerID: 1, LastOrder: 5, OrderCount: 5}, ReadIndex: 9}
	}, serve.Options{})
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

// TestReadsSkipNodesWithoutState: after a quorum loss and --recover, the
// lost nodes come back empty and wait to be added; they are up, say
// "follower", and have nothing to read. Reads must go to the node that
// has the data, not fail over and over on the empty ones.
func TestReadsSkipNodesWithoutState(t *testing.T) {
	var leaderReads, emptyReads atomic.Int64
	addrs := []string{
		fakeNode(t, wire.StatusInfo{ID: "n1", Role: "leader", LeaderID: "n1", Term: 3, LastIndex: 9}, &leaderReads),
		fakeNode(t, wire.StatusInfo{ID: "n2", Role: "follower"}, &emptyReads),
		fakeNode(t, wire.StatusInfo{ID: "n3", Role: "follower"}, &emptyReads),
	}
	cfg := DefaultConfig()
	cfg.Listen, cfg.Backends, cfg.CacheSize = "127.0.0.1:0", addrs, 0
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	probed := func() bool {
		for _, be := range b.pool.list() {
			be.mu.Lock()
			ok := be.status.ID != ""
			be.mu.Unlock()
			if !ok {
				return false
			}
		}
		return b.pool.currentLeader() != nil
	}
	for start := time.Now(); !probed(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the balancer never probed the nodes")
		}
	}
	conn, err := wire.Dial(context.Background(), b.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rec, err := conn.Get(ctx, wire.Get{CustomerID: 1, Consistency: wire.Linearizable})
		cancel()
		if err != nil || rec.OrderCount != 5 {
			t.Fatalf("read %d: %+v, %v", i, rec, err)
		}
	}
	if n := emptyReads.Load(); n != 0 {
		t.Errorf("%d reads sent to nodes without Raft state", n)
	}
	if n := leaderReads.Load(); n != 20 {
		t.Errorf("the node with the data served %d reads, want 20", n)
	}
}

// TestPoolFollowsMembership: the balancer starts with one seed; the
// leader's Status names a second member, which it adds; when the leader
// stops naming it, it is dropped.
func TestPoolFollowsMembership(t *testing.T) {
	var reads atomic.Int64
	follower := fakeNode(t, wire.StatusInfo{ID: "n2", Role: "follower", Term: 3}, &reads)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leaderAddr := ln.Addr().String()
	var members atomic.Pointer[[]wire.Member]
	both := []wire.Member{{ID: "n1", ClientAddr: leaderAddr, Voter: true}, {ID: "n2", ClientAddr: follower, Voter: true}}
	members.Store(&both)
	srv := serve.Orderly(ln, func(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
		return wire.StatusInfo{ID: "n1", Role: "leader", LeaderID: "n1", Term: 3, Members: *members.Load()}
	}, serve.Options{})
	t.Cleanup(srv.Close)

	cfg := DefaultConfig()
	cfg.Listen, cfg.Backends = "127.0.0.1:0", []string{leaderAddr}
	cfg.ProbeInterval = 20 * time.Millisecond
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	backends := func() map[string]bool {
		out := map[string]bool{}
		for _, be := range b.pool.list() {
			out[be.addr] = true
		}
		return out
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("never: %s (backends %v)", what, backends())
			}
		}
	}
	waitUntil("the member missing from the seeds is added", func() bool { return backends()[follower] && len(backends()) == 2 })
	alone := both[:1]
	members.Store(&alone)
	waitUntil("the member that left is dropped", func() bool { return !backends()[follower] && len(backends()) == 1 })
}
