package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/fsm"
	"orderly/internal/freeport"
	"orderly/serve"
	"orderly/wire"
)

// testCluster is three in-process nodes on loopback, for fast tests of
// the node's logic; the e2e package tests the same through the binaries.
type testCluster struct {
	t     *testing.T
	cfgs  []Config
	nodes []*Node
	logs  lockedBuffer
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	return newTestClusterWith(t, func(*Config) {})
}

// newTestClusterWith is newTestCluster with every node's config changed
// by set before it opens.
func newTestClusterWith(t *testing.T, set func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t}
	var peers []Peer
	for i := 1; i <= 3; i++ {
		raftAddr, err := freeport.Addr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		clientAddr, err := freeport.Addr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i)
		cfg.DataDir = t.TempDir()
		cfg.RaftAddr, cfg.ClientAddr = raftAddr, clientAddr
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: &tc.logs})
		set(&cfg)
		tc.cfgs = append(tc.cfgs, cfg)
		peers = append(peers, Peer{ID: cfg.ID, RaftAddr: raftAddr})
	}
	for i := range tc.cfgs {
		tc.cfgs[i].Peers = peers
		n, err := Open(tc.cfgs[i])
		if err != nil {
			t.Fatal(err)
		}
		tc.nodes = append(tc.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range tc.nodes {
			if n != nil {
				n.Close()
			}
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", tc.logs.String())
		}
	})
	return tc
}

// lockedBuffer collects the nodes' logs; shown when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// leader waits for a node that is leader and ready for reads.
func (tc *testCluster) leader() *Node {
	tc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.nodes {
			if n != nil && n.isReadyLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no ready leader")
	return nil
}

func call(t *testing.T, n *Node, req wire.Message) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.handle(ctx, serve.Caller{ConnID: 1, Role: wire.RoleAdmin}, req)
}

// followerOf is a node other than leader.
func (tc *testCluster) followerOf(leader *Node) *Node {
	for _, n := range tc.nodes {
		if n != nil && n != leader {
			return n
		}
	}
	tc.t.Fatal("no follower")
	return nil
}

func TestInProcessClusterOrdersAndReads(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	follower := tc.followerOf(leader)

	// A write to a follower is refused before Raft sees it, naming the leader.
	resp := call(t, follower, wire.Order{CustomerID: 1, OrderNumber: 1, ClientID: 9, Seq: 1})
	var we *wire.Error
	if e, ok := resp.(*wire.Error); !ok || e.Code != wire.CodeNotLeader {
		t.Fatalf("order on a follower: %v, want NotLeader", resp)
	} else {
		we = e
	}
	t.Logf("follower said: %v", we)

	var last wire.LaptopInfo
	for k := int32(1); k <= 20; k++ {
		r := call(t, leader, wire.Order{CustomerID: 1, OrderNumber: k, LaptopType: wire.LaptopType(k % 2), ClientID: 9, Seq: uint64(k)})
		li, ok := r.(wire.LaptopInfo)
		if !ok {
			t.Fatalf("order %d: %v", k, r)
		}
		if (k%2 == 1) != (li.ExpertID >= 0) || li.OrderCount != uint64(k) {
			t.Fatalf("order %d answered %+v", k, li)
		}
		last = li
	}
	// A retry of the last seq is answered from the session, not applied again.
	if r, ok := call(t, leader, wire.Order{CustomerID: 1, OrderNumber: 20, LaptopType: wire.Regular, ClientID: 9, Seq: 20}).(wire.LaptopInfo); !ok || r.Index != last.Index {
		t.Fatalf("retry of seq 20: %+v, want the first answer (index %d)", r, last.Index)
	}
	if e, ok := call(t, leader, wire.Order{CustomerID: 1, OrderNumber: 5, ClientID: 9, Seq: 5}).(*wire.Error); !ok || e.Code != wire.CodeStaleSeq {
		t.Fatalf("an old seq was not refused as stale")
	}

	// A linearizable read on the follower sees the last acknowledged write.
	rec, ok := call(t, follower, wire.Get{CustomerID: 1, Consistency: wire.Linearizable}).(wire.Record)
	if !ok || rec.OrderCount != 20 || rec.LastOrder != 20 || rec.ReadIndex < last.Index {
		t.Fatalf("linearizable follower read %+v, want 20 orders read at >= %d", rec, last.Index)
	}
	// A session read waits for the index the client has seen.
	rec, ok = call(t, follower, wire.Get{CustomerID: 1, Consistency: wire.Session, MinIndex: last.Index}).(wire.Record)
	if !ok || rec.ReadIndex < last.Index {
		t.Fatalf("session read %+v, want read at >= %d", rec, last.Index)
	}
	recs, ok := call(t, follower, wire.Scan{From: 0, Limit: 10, Consistency: wire.Linearizable}).(wire.Records)
	if !ok || len(recs.Records) != 1 || recs.Records[0].CustomerID != 1 {
		t.Fatalf("scan %+v", recs)
	}
}

func TestInProcessLeaderRestartKeepsData(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	for k := int32(1); k <= 5; k++ {
		if _, ok := call(t, leader, wire.Order{CustomerID: 2, OrderNumber: k, ClientID: 3, Seq: uint64(k)}).(wire.LaptopInfo); !ok {
			t.Fatalf("order %d failed", k)
		}
	}
	i := 0
	for tc.nodes[i] != leader {
		i++
	}
	if err := leader.Close(); err != nil { // hands leadership over first
		t.Fatal(err)
	}
	tc.nodes[i] = nil
	next := tc.leader()
	if r, ok := call(t, next, wire.Get{CustomerID: 2}).(wire.Record); !ok || r.OrderCount != 5 {
		t.Fatalf("new leader reads %+v, want 5 orders", r)
	}
	n, err := Open(tc.cfgs[i]) // the same data dir, reopened
	if err != nil {
		t.Fatal(err)
	}
	tc.nodes[i] = n
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, ok := call(t, n, wire.Get{CustomerID: 2, Consistency: wire.Stale}).(wire.Record)
		if ok && r.OrderCount == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node reads %+v, want 5 orders", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A data dir cannot be opened by another node id.
	other := tc.cfgs[i]
	other.ID = "intruder"
	other.Peers = []Peer{{ID: "intruder", RaftAddr: other.RaftAddr}}
	n.Close()
	tc.nodes[i] = nil
	if _, err := Open(other); !errors.Is(err, ErrForeignDataDir) {
		t.Fatalf("open of n%d's data dir as another id: %v, want ErrForeignDataDir", i+1, err)
	}
}

// TestReadAfterBarrier: the commit index may name an entry the FSM never
// sees (here a barrier as the last entry); a linearizable read must not
// wait for the FSM to reach it.
func TestReadAfterBarrier(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	if _, ok := call(t, leader, wire.Order{CustomerID: 3, OrderNumber: 1, ClientID: 4, Seq: 1}).(wire.LaptopInfo); !ok {
		t.Fatal("order failed")
	}
	if err := leader.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	applied := leader.fsm.AppliedIndex()
	if commit := leader.raft.CommitIndex(); commit <= applied {
		t.Fatalf("commit index %d not past the FSM's %d: the barrier is not the last entry", commit, applied)
	}
	for _, n := range tc.nodes {
		rec, ok := call(t, n, wire.Get{CustomerID: 3, Consistency: wire.Linearizable}).(wire.Record)
		if !ok || rec.OrderCount != 1 {
			t.Fatalf("linearizable read on %s after a barrier: %+v", n.cfg.ID, rec)
		}
	}
}

// TestPublishRefusesAVersionTheLeaderDoesNotKnow: a Publish claiming a
// command version above the leader's own would open the version gate for
// commands no member may understand; it is refused and changes nothing.
func TestPublishRefusesAVersionTheLeaderDoesNotKnow(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	follower := tc.followerOf(leader)
	before := leader.fsm.MemberVersion(follower.cfg.ID)
	resp := call(t, leader, wire.Publish{ID: follower.cfg.ID, ClientAddr: follower.Addr(), Version: fsm.Version + 1})
	if e, ok := resp.(*wire.Error); !ok || e.Code != wire.CodeBadRequest {
		t.Fatalf("publish of version %d: %v, want BadRequest", fsm.Version+1, resp)
	}
	if got := leader.fsm.MemberVersion(follower.cfg.ID); got != before {
		t.Fatalf("the refused publish changed %s's version from %d to %d", follower.cfg.ID, before, got)
	}
}

// A node certificate that names no member gets what a node needs to
// join (Status, Members) and nothing else, on any port, also wrapped in
// AsRole; a member gets what its role allows.
func TestStrangerNodeMayOnlyAskToJoin(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stranger := serve.Caller{ConnID: 2, Name: "n9", Role: wire.RoleNode}
	for _, req := range []wire.Message{wire.Status{}, wire.Members{}} {
		if e, ok := leader.handle(ctx, stranger, req).(*wire.Error); ok {
			t.Errorf("a stranger's %s: %v", req.Type(), e)
		}
	}
	for _, req := range []wire.Message{wire.ReadIndex{}, wire.Get{CustomerID: 1}, wire.Scan{Limit: 10},
		wire.Publish{ID: "n9", ClientAddr: "127.0.0.1:1"}, wire.Alarms{}} {
		if e, ok := leader.handle(ctx, stranger, req).(*wire.Error); !ok || e.Code != wire.CodePermissionDenied {
			t.Errorf("a stranger's %s: %v, want PermissionDenied", req.Type(), leader.handle(ctx, stranger, req))
		}
	}
	forwarded := serve.Caller{ConnID: 2, Name: "n9", Role: wire.RoleReader, Forwarder: wire.RoleNode}
	if e, ok := leader.handle(ctx, forwarded, wire.Status{}).(*wire.Error); !ok || e.Code != wire.CodePermissionDenied {
		t.Errorf("a stranger's forwarded Status: %v, want PermissionDenied", e)
	}
	member := serve.Caller{ConnID: 2, Name: leader.cfg.ID, Role: wire.RoleNode}
	if _, ok := leader.handle(ctx, member, wire.ReadIndex{}).(wire.ReadIndexReply); !ok {
		t.Error("a member's ReadIndex was refused")
	}
}
