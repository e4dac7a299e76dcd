package group

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/fsm"
)

// memCluster is a group of replicas on hashicorp/raft's in-memory stores
// and InmemTransport: no file, no port.
type memCluster struct {
	t        *testing.T
	replicas []*Group
	trans    []*raft.InmemTransport
	snaps    []*raft.InmemSnapshotStore
	addrs    []raft.ServerAddress
	closed   []bool
}

// testTiming is fast Raft timing for in-memory replicas.
var testTiming = Timing{HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
	LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond, SnapshotThreshold: 8192}

func newMemCluster(t *testing.T, size int) *memCluster {
	t.Helper()
	return newMemClusterTimed(t, size, testTiming)
}

func newMemClusterTimed(t *testing.T, size int, timing Timing) *memCluster {
	t.Helper()
	c := &memCluster{t: t, closed: make([]bool, size)}
	var servers []raft.Server
	addrs := make([]raft.ServerAddress, size)
	for i := range size {
		addrs[i], _ = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("r%d", i)))
	}
	for i := range size {
		_, tr := raft.NewInmemTransport(addrs[i])
		c.trans = append(c.trans, tr)
		servers = append(servers, raft.Server{ID: raft.ServerID(addrs[i]), Address: addrs[i], Suffrage: raft.Voter})
	}
	c.addrs = addrs
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(addrs[j], b)
			}
		}
	}
	for i := range size {
		logs := raft.NewInmemStore()
		c.snaps = append(c.snaps, raft.NewInmemSnapshotStore())
		g, err := New(Config{
			ID: string(addrs[i]), Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testWriter{t}}),
			Timing:         timing,
			Stores:         Stores{Logs: logs, Stable: logs, Snapshots: c.snaps[i]},
			Transport:      c.trans[i],
			RequestTimeout: 2 * time.Second,
			AskLeader:      c.askLeader,
		})
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		c.replicas = append(c.replicas, g)
	}
	if err := c.replicas[0].Raft().BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	t.Cleanup(func() {
		for i, g := range c.replicas {
			if !c.closed[i] {
				g.Close()
			}
		}
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// askLeader is the followers' AskLeader: the leader's ReadIndex, called
// directly (raftnode sends it over the network).
func (c *memCluster) askLeader(ctx context.Context) (uint64, error) {
	for i, g := range c.replicas {
		if !c.closed[i] && g.IsLeader() {
			return g.ReadIndex(ctx)
		}
	}
	return 0, fmt.Errorf("%w: no leader", ErrUnavailable)
}

// isolate cuts replica i off, both ways: InmemTransport's routes are
// one-way, and a leader whose own routes alone are cut is still reached
// by the others (a new leader catches it up, and its reads are right).
func (c *memCluster) isolate(i int) {
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.addrs[i])
		}
	}
}

// leader waits for a ready leader among the open replicas.
func (c *memCluster) leader() (int, *Group) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, g := range c.replicas {
			if !c.closed[i] && g.IsReadyLeader() {
				return i, g
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no ready leader within 10s")
	return 0, nil
}

func (c *memCluster) follower(leader int) *Group {
	for i, g := range c.replicas {
		if i != leader && !c.closed[i] {
			return g
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func order(customer int32, number int32, client, seq uint64) fsm.PlaceOrder {
	return fsm.PlaceOrder{CustomerID: customer, OrderNumber: number, ExpertID: -1, ClientID: client, Seq: seq}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The leader places orders; a follower refuses them with ErrNotLeader and
// serves them at every read level.
func TestOrdersAndReadsAtEveryLevel(t *testing.T) {
	c := newMemCluster(t, 3)
	li, leader := c.leader()
	follower := c.follower(li)
	ctx := ctxFor(t, 10*time.Second)

	var last uint64
	for i := range int32(5) {
		res, err := leader.Propose(ctx, order(7, i+1, 1, uint64(i+1)))
		if err != nil || res.Refused != 0 {
			t.Fatalf("order %d: %+v, %v", i+1, res, err)
		}
		last = res.Order.Index
	}
	if _, err := follower.Propose(ctx, order(7, 6, 1, 6)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("order on a follower: %v, want ErrNotLeader", err)
	}
	if err := follower.Read(ctx, Linearizable, 0); err != nil {
		t.Fatalf("linearizable read on a follower: %v", err)
	}
	if rec, _ := follower.FSM().Get(7); rec.OrderCount != 5 {
		t.Fatalf("after a linearizable read the follower holds %d orders, want 5", rec.OrderCount)
	}
	if err := c.replicas[(li+2)%3].Read(ctx, Session, last); err != nil {
		t.Fatalf("session read at %d: %v", last, err)
	}
	if rec, applied := c.replicas[(li+2)%3].FSM().Get(7); rec.OrderCount != 5 || applied < last {
		t.Fatalf("session read at %d saw %d orders at %d", last, rec.OrderCount, applied)
	}
	if got := leader.ReadIndexReads(true); got == 0 {
		t.Fatal("the follower's linearizable read ran no ReadIndex on the leader")
	}
}

// A retry of an order already applied, sent to the next leader after the
// first one is gone, is answered from its session and applied once.
func TestRetryAfterLeaderLossAppliesOnce(t *testing.T) {
	c := newMemCluster(t, 3)
	li, leader := c.leader()
	ctx := ctxFor(t, 20*time.Second)
	first, err := leader.Propose(ctx, order(3, 1, 9, 1))
	if err != nil {
		t.Fatalf("order: %v", err)
	}
	if err := leader.Close(); err != nil {
		t.Fatalf("close leader: %v", err)
	}
	c.closed[li] = true
	_, next := c.leader()
	again, err := next.Propose(ctx, order(3, 1, 9, 1))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !again.Order.Duplicate || again.Order.Index != first.Order.Index {
		t.Fatalf("retry answered %+v, want the first answer %+v as a duplicate", again.Order, first.Order)
	}
	if err := next.Read(ctx, Linearizable, 0); err != nil {
		t.Fatalf("read: %v", err)
	}
	if rec, _ := next.FSM().Get(3); rec.OrderCount != 1 {
		t.Fatalf("customer 3 has %d orders, want 1", rec.OrderCount)
	}
}

// A leader cut off from its followers, once the others have elected a
// new one, serves no linearizable read, and an order it takes then has
// an unknown outcome or is refused, never a false success. (Before that,
// hashicorp/raft's VerifyLeader may still count the ack of a heartbeat
// sent before the cut; the followers' leader stickiness keeps such a read
// right: none of them votes for another within a heartbeat timeout.)
func TestCutOffLeaderReadsNothingAndKnowsNothing(t *testing.T) {
	c := newMemCluster(t, 3)
	li, leader := c.leader()
	ctx := ctxFor(t, 10*time.Second)
	if _, err := leader.Propose(ctx, order(1, 1, 1, 1)); err != nil {
		t.Fatalf("order: %v", err)
	}
	c.isolate(li)
	c.closed[li] = true // c.leader looks among the others
	c.leader()
	c.closed[li] = false

	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := leader.Read(rctx, Linearizable, 0)
	if err == nil {
		t.Fatal("a leader cut off from its followers served a linearizable read")
	}
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read error %v is neither ErrNotLeader nor ErrUnavailable", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = leader.Propose(pctx, order(1, 2, 1, 2))
	switch {
	case errors.Is(err, ErrNotLeader): // stepped down before taking it: a sure refusal
	case errors.Is(err, ErrUnknownOutcome):
	default:
		t.Fatalf("order on a cut-off leader: %v, want ErrUnknownOutcome or ErrNotLeader", err)
	}
}

// WaitApplied returns for an index that is a barrier, which the FSM never
// sees, and SettledIndex moves past it.
func TestWaitAppliedPastEntriesTheFSMNeverSees(t *testing.T) {
	c := newMemCluster(t, 3)
	_, leader := c.leader()
	ctx := ctxFor(t, 10*time.Second)
	if _, err := leader.Propose(ctx, order(2, 1, 4, 1)); err != nil {
		t.Fatalf("order: %v", err)
	}
	if err := leader.Raft().Barrier(time.Second).Error(); err != nil {
		t.Fatalf("barrier: %v", err)
	}
	idx := leader.Raft().LastIndex()
	if applied := leader.FSM().AppliedIndex(); applied >= idx {
		t.Fatalf("the FSM applied %d, past the barrier at %d", applied, idx)
	}
	if err := leader.WaitApplied(ctx, idx); err != nil {
		t.Fatalf("wait for the barrier's index %d: %v", idx, err)
	}
	if got := leader.SettledIndex(); got < idx {
		t.Fatalf("settled index %d, want at least the barrier's %d", got, idx)
	}
}

// A replica on empty stores serves no read, not even a stale one.
func TestEmptyReplicaServesNoRead(t *testing.T) {
	logs := raft.NewInmemStore()
	_, tr := raft.NewInmemTransport("alone")
	g, err := New(Config{ID: "alone", Stores: Stores{Logs: logs, Stable: logs, Snapshots: raft.NewInmemSnapshotStore()},
		Transport: tr, RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Read(context.Background(), Stale, 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stale read on empty stores: %v, want ErrUnavailable", err)
	}
}

// Timing.SnapshotInterval reaches Raft: a replica whose log has passed the
// threshold snapshots within the interval, not raft's default 120 s (a
// node restarted more often than that never snapshotted, and its log, and
// its time to start, grew without bound).
func TestSnapshotsWithinTheInterval(t *testing.T) {
	timing := testTiming
	timing.SnapshotThreshold, timing.SnapshotInterval = 32, 20*time.Millisecond
	c := newMemClusterTimed(t, 3, timing)
	_, leader := c.leader()
	ctx := ctxFor(t, 10*time.Second)
	for i := range int32(64) {
		if res, err := leader.Propose(ctx, order(4, i+1, 1, uint64(i+1))); err != nil || res.Refused != 0 {
			t.Fatalf("order %d: %+v, %v", i+1, res, err)
		}
	}
	for i, snaps := range c.snaps {
		deadline := time.Now().Add(5 * time.Second)
		for {
			metas, err := snaps.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(metas) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d took no snapshot in 5s with 64 entries past a threshold of 32", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
