package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orderly/client"
	"orderly/serve"
	"orderly/shard"
	"orderly/wire"
)

const testShards = 3

// shardLeader waits for the node whose replica of shard id leads, ready.
func (tc *testCluster) shardLeader(id uint32) *Node {
	tc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.nodes {
			if n != nil && n.replicas()[id].group.IsReadyLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatalf("no ready leader of shard %d", id)
	return nil
}

// waitLimits waits until every replica's FSM has the session cap, which
// makes a new session's first seq other than 1 a SessionExpired.
func (tc *testCluster) waitLimits() {
	tc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, n := range tc.nodes {
			for _, r := range n.replicas() {
				if set, _ := r.group.FSM().Limits(); !set {
					all = false
				}
			}
		}
		if all {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("session caps not set in every shard")
}

func TestShardedClusterPlacesEachCustomerInItsShard(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards = testShards })
	tc.waitLimits()
	const customers = 60
	seqs := map[uint32]uint64{} // one session per shard: each starts at 1
	for c := int32(0); c < customers; c++ {
		id := shard.Of(c, testShards)
		seqs[id]++
		resp := call(t, tc.shardLeader(id), wire.Order{CustomerID: c, OrderNumber: 1, ClientID: 7, Seq: seqs[id]})
		if li, ok := resp.(wire.LaptopInfo); !ok || li.CustomerID != c || li.OrderCount != 1 {
			t.Fatalf("order of customer %d in shard %d: %v", c, id, resp)
		}
	}
	for id := range uint32(testShards) {
		if seqs[id] < 5 {
			t.Fatalf("shard %d took only %d of %d customers", id, seqs[id], customers)
		}
	}
	// Every replica of a shard holds its customers and no other's.
	for _, n := range tc.nodes {
		for _, r := range n.replicas() {
			deadline := time.Now().Add(10 * time.Second)
			for {
				recs, _, _ := r.group.FSM().Scan(0, customers+1)
				if len(recs) == int(seqs[r.shard]) {
					for _, rec := range recs {
						if got := shard.Of(rec.CustomerID, testShards); got != r.shard {
							t.Fatalf("%s: customer %d (shard %d) held by shard %d", n.cfg.ID, rec.CustomerID, got, r.shard)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s shard %d holds %d customers, want %d", n.cfg.ID, r.shard, len(recs), seqs[r.shard])
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	// A node that does not lead a customer's shard names the one that does.
	c := int32(0)
	leader := tc.shardLeader(shard.Of(c, testShards))
	other := tc.followerOf(leader)
	resp := call(t, other, wire.Order{CustomerID: c, OrderNumber: 2, ClientID: 8, Seq: 1})
	if e, ok := resp.(*wire.Error); !ok || e.Code != wire.CodeNotLeader || e.LeaderAddr != leader.cfg.ClientAddr {
		t.Fatalf("order on a node not leading its shard: %v, want NotLeader naming %s", resp, leader.cfg.ClientAddr)
	}
	// Sessions are per shard: a client new to a shard starts at seq 1.
	resp = call(t, tc.shardLeader(1), wire.Order{CustomerID: firstOf(1), OrderNumber: 3, ClientID: 7, Seq: seqs[1] + 1})
	if _, ok := resp.(wire.LaptopInfo); !ok {
		t.Fatalf("next seq of a shard's session: %v", resp)
	}
	resp = call(t, tc.shardLeader(2), wire.Order{CustomerID: firstOf(2), OrderNumber: 3, ClientID: 99, Seq: 2})
	if e, ok := resp.(*wire.Error); !ok || e.Code != wire.CodeSessionExpired {
		t.Fatalf("first order of a new session at seq 2: %v, want SessionExpired", resp)
	}

	// Reads at every level, from a node that leads none of the shards
	// asked for; a linearizable one asks the shard's leader (ShardReadIndex).
	for c := int32(0); c < customers; c += 7 {
		for _, level := range []wire.Consistency{wire.Linearizable, wire.Stale} {
			n := tc.followerOf(tc.shardLeader(shard.Of(c, testShards)))
			resp := call(t, n, wire.Get{CustomerID: c, Consistency: level})
			if rec, ok := resp.(wire.Record); !ok || rec.CustomerID != c || (level == wire.Linearizable && rec.OrderCount < 1) {
				t.Fatalf("get %d at %v from %s: %v", c, level, n.cfg.ID, resp)
			}
		}
	}

	// A scan walks every shard in customer order, each customer once.
	for _, n := range tc.nodes {
		var got []int32
		from := int32(0)
		for pages := 0; from >= 0; pages++ {
			if pages > customers {
				t.Fatalf("%s: scan does not end", n.cfg.ID)
			}
			resp := call(t, n, wire.Scan{From: from, Limit: 7, Consistency: wire.Session, MinIndex: 1 << 40})
			recs, ok := resp.(wire.Records)
			if !ok {
				t.Fatalf("scan from %d on %s: %v", from, n.cfg.ID, resp)
			}
			for _, r := range recs.Records {
				got = append(got, r.CustomerID)
			}
			from = recs.Next
		}
		if len(got) != customers {
			t.Fatalf("%s: scan saw %d customers, want %d: %v", n.cfg.ID, len(got), customers, got)
		}
		for i, c := range got {
			if c != int32(i) {
				t.Fatalf("%s: scan out of order or missing at %d: %v", n.cfg.ID, i, got)
			}
		}
	}

	// The map: every shard, its slots, its replicas, its leader.
	m, ok := call(t, tc.nodes[0], wire.Shards{}).(wire.ShardMap)
	if !ok || len(m.Shards) != testShards {
		t.Fatalf("shard map: %v", m)
	}
	next := uint32(0)
	for i, s := range m.Shards {
		if s.ID != uint32(i) || s.SlotLo != next || s.Epoch == 0 || len(s.Replicas) != 3 || s.Leader == "" || s.LeaderAddr == "" {
			t.Fatalf("shard %d in the map: %+v", i, s)
		}
		next = s.SlotHi
	}
	if next != shard.Slots {
		t.Fatalf("the map's slots end at %d", next)
	}
	if e, ok := call(t, tc.nodes[0], wire.ShardReadIndex{Shard: testShards}).(*wire.Error); !ok || e.Code != wire.CodeWrongShard {
		t.Fatalf("read index of a shard the node does not hold: %v, want WrongShard", e)
	}

	// Metrics: the orders of every shard, and each replica with its label.
	reg := prometheus.NewRegistry()
	reg.MustRegister(tc.nodes[0].Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	series := map[string]int{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			series[f.GetName()]++
			got[f.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if series["orderly_shard_leader"] != testShards || got["orderly_shard_leader"] < 0 {
		t.Fatalf("orderly_shard_leader: %d series, want one per shard", series["orderly_shard_leader"])
	}
	if got["orderly_orders_applied_total"] < customers || got["orderly_shard_orders_applied_total"] != got["orderly_orders_applied_total"] {
		t.Fatalf("orders applied %v, by shard %v; want at least %d, the same", got["orderly_orders_applied_total"], got["orderly_shard_orders_applied_total"], customers)
	}
}

// firstOf is the smallest customer id in shard id of testShards.
func firstOf(id uint32) int32 {
	for c := int32(0); ; c++ {
		if shard.Of(c, testShards) == id {
			return c
		}
	}
}

func TestShardedClusterReopensWithItsShards(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards = testShards })
	c := firstOf(2)
	if li, ok := call(t, tc.shardLeader(2), wire.Order{CustomerID: c, OrderNumber: 5, ClientID: 3, Seq: 1}).(wire.LaptopInfo); !ok {
		t.Fatalf("order: %v", li)
	}
	for i, n := range tc.nodes {
		if err := n.Close(); err != nil {
			t.Fatalf("close %s: %v", n.cfg.ID, err)
		}
		tc.nodes[i] = nil
	}
	// What a crash in the middle of deleting a dropped replica leaves (or
	// a release that kept them aside) is deleted at the next start.
	leftover := filepath.Join(shardDir(tc.cfgs[0].DataDir, 1)+droppedSuffix+"7", "wal")
	if err := os.MkdirAll(leftover, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "00001.wal"), []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	for i := range tc.cfgs {
		tc.cfgs[i].Shards = 0 // the data dir says how many
		n, err := reopen(tc.cfgs[i])
		if err != nil {
			t.Fatalf("reopen %s: %v", tc.cfgs[i].ID, err)
		}
		tc.nodes[i] = n
	}
	if got := tc.nodes[0].shardCount(); got != testShards {
		t.Fatalf("reopened with %d shards, want %d", got, testShards)
	}
	if _, err := os.Stat(filepath.Dir(leftover)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dropped replica's leftover files after a restart: %v", err)
	}
	rec, ok := call(t, tc.shardLeader(2), wire.Get{CustomerID: c, Consistency: wire.Linearizable}).(wire.Record)
	if !ok || rec.LastOrder != 5 {
		t.Fatalf("customer %d after a restart: %v", c, rec)
	}
	// A retry of the order before the restart is answered, not applied again.
	li, ok := call(t, tc.shardLeader(2), wire.Order{CustomerID: c, OrderNumber: 5, ClientID: 3, Seq: 1}).(wire.LaptopInfo)
	if !ok || li.OrderCount != 1 {
		t.Fatalf("retry after a restart: %v", li)
	}
	tc.nodes[0].Close()
	tc.nodes[0] = nil
	tc.cfgs[0].Shards = 5
	if _, err := Open(tc.cfgs[0]); err == nil || !strings.Contains(err.Error(), "fixed when a cluster is created") {
		t.Fatalf("reopen with another shard count: %v", err)
	}
}

func TestSettleShardCount(t *testing.T) {
	dir := t.TempDir()
	if n, err := settleShardCount(dir, 0, false); err != nil || n != 1 {
		t.Fatalf("new data dir, no count: %d, %v", n, err)
	}
	if n, err := settleShardCount(dir, 0, true); err != nil || n != 1 {
		t.Fatalf("recorded 1: %d, %v", n, err)
	}
	old := t.TempDir() // a single-group release's data dir: a log, no record
	if _, err := settleShardCount(old, 4, true); err == nil {
		t.Fatal("--shards 4 on a single-group release's data dir: no error")
	}
	if n, err := settleShardCount(old, 0, true); err != nil || n != 1 {
		t.Fatalf("single-group release's data dir: %d, %v", n, err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, shardsFile), []byte(`{"shards": 0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := settleShardCount(bad, 0, true); err == nil {
		t.Fatal("a record of 0 shards: no error")
	}
	if _, err := shardCountOf(bad); err != nil {
		t.Fatal(err)
	}
	if err := Recover(bad, "n1", []Peer{{ID: "n1", RaftAddr: "127.0.0.1:1"}}, nil); err == nil {
		t.Fatal("recover of a sharded data dir: no error")
	}
}

// waitMap waits until the shard map names every shard's leader and its
// replicas.
func (tc *testCluster) waitMap(replicas int) wire.ShardMap {
	tc.t.Helper()
	var m wire.ShardMap
	deadline := time.Now().Add(15 * time.Second)
	for published := false; !published; {
		if time.Now().After(deadline) {
			tc.t.Fatalf("the shard map never named every shard's leader: %+v", m)
		}
		time.Sleep(20 * time.Millisecond)
		m = call(tc.t, tc.nodes[0], wire.Shards{}).(wire.ShardMap)
		published = len(m.Shards) == testShards
		for _, s := range m.Shards {
			published = published && s.Leader != "" && s.LeaderAddr != "" && len(s.Replicas) == replicas && s.Epoch > 0
		}
	}
	return m
}

// client is a cluster client of every node's client port, closed at the
// test's end.
func (tc *testCluster) client() *client.Client {
	tc.t.Helper()
	var addrs []string
	for _, n := range tc.nodes {
		addrs = append(addrs, n.cfg.ClientAddr)
	}
	cl, err := client.New(client.Options{Addrs: addrs, RetryTimeout: 20 * time.Second})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { cl.Close() })
	return cl
}

// callFollowing sends req to n and follows NotLeader and WrongShard
// answers to the node they name, until an answer that is neither.
func (tc *testCluster) callFollowing(t *testing.T, n *Node, req wire.Message) wire.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := call(t, n, req)
		e, ok := resp.(*wire.Error)
		if !ok || (e.Code != wire.CodeNotLeader && e.Code != wire.CodeWrongShard && e.Code != wire.CodeUnavailable) {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: still %v", req, e)
		}
		for _, m := range tc.nodes {
			if m != nil && e.LeaderAddr != "" && m.cfg.ClientAddr == e.LeaderAddr {
				n = m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShardsPlacedOverSomeNodes: 3 shards of 2 replicas each over 3
// nodes. A node answers WrongShard for a shard it holds no replica of,
// naming the shard's leader from the map its leaders publish in the
// meta group; every customer's orders land once in its shard.
func TestShardsPlacedOverSomeNodes(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards, c.Replicas = testShards, 2 })
	for _, n := range tc.nodes {
		if held := len(n.dataReplicas()); held != 2 {
			t.Fatalf("%s holds %d shards, want 2", n.cfg.ID, held)
		}
	}
	m := tc.waitMap(2)
	seqs := map[uint32]uint64{}
	for c := int32(0); c < 30; c++ {
		id := shard.Of(c, testShards)
		seqs[id]++
		for _, n := range tc.nodes { // a retry through each node: applied once
			resp := tc.callFollowing(t, n, wire.Order{CustomerID: c, OrderNumber: 1, ClientID: 5, Seq: seqs[id]})
			if li, ok := resp.(wire.LaptopInfo); !ok || li.OrderCount != 1 {
				t.Fatalf("order of customer %d through %s: %v", c, n.cfg.ID, resp)
			}
		}
		for _, n := range tc.nodes {
			if n.replicas()[id] != nil {
				continue
			}
			e, ok := call(t, n, wire.Get{CustomerID: c, Consistency: wire.Stale}).(*wire.Error)
			if !ok || e.Code != wire.CodeWrongShard || e.Epoch == 0 || e.LeaderAddr != m.Shards[id].LeaderAddr {
				t.Fatalf("get of customer %d (shard %d) from %s, which holds none of it: %v, want WrongShard naming %s",
					c, id, n.cfg.ID, e, m.Shards[id].LeaderAddr)
			}
		}
	}
	// Only a replica of a shard may publish it: a member holding none of
	// it is refused, whatever it claims.
	for id := range uint32(testShards) {
		for _, n := range tc.nodes {
			if n.replicas()[id] != nil {
				continue
			}
			forged := wire.PublishShard{Shard: wire.ShardInfo{ID: id, Epoch: 1 << 40, Leader: n.cfg.ID,
				Replicas: []wire.Replica{{ID: n.cfg.ID, Voter: true}}}, Term: 1 << 40}
			for _, to := range tc.nodes {
				resp := to.handle(context.Background(), serve.Caller{Role: wire.RoleNode, Name: n.cfg.ID}, forged)
				if e, ok := resp.(*wire.Error); !ok || (e.Code != wire.CodePermissionDenied && e.Code != wire.CodeNotLeader) {
					t.Fatalf("%s's forged map entry of shard %d sent to %s: %v, want PermissionDenied (or NotLeader)", n.cfg.ID, id, to.cfg.ID, resp)
				}
			}
		}
	}
	if m2 := call(t, tc.nodes[0], wire.Shards{}).(wire.ShardMap); m2.Shards[0].Epoch >= 1<<40 {
		t.Fatalf("a forged entry made it into the map: %+v", m2.Shards[0])
	}

	// A node that holds part of the shards scans all of them: the rest
	// it asks of their leaders.
	for _, n := range tc.nodes {
		got := scanAll(t, n)
		for i, c := range got {
			if c != int32(i) || len(got) != 30 {
				t.Fatalf("%s: scan of a cluster it holds part of: %v", n.cfg.ID, got)
			}
		}
	}
}

// scanAll pages through every customer from n, 7 at a time.
func scanAll(t *testing.T, n *Node) []int32 {
	t.Helper()
	var got []int32
	for from, pages := int32(0), 0; from >= 0; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: scan does not end", n.cfg.ID)
		}
		recs, ok := call(t, n, wire.Scan{From: from, Limit: 7, Consistency: wire.Session, MinIndex: 1 << 40}).(wire.Records)
		if !ok {
			t.Fatalf("scan from %d on %s: %v", from, n.cfg.ID, recs)
		}
		for _, r := range recs.Records {
			got = append(got, r.CustomerID)
		}
		from = recs.Next
	}
	return got
}

// TestMoveShardUnderLoad: shard 0 of 3 (2 replicas each, on n1 and n2)
// moves from its leader to n3 while a client writes to its customers; a
// second run of the move finds it done. Every acknowledged order is there
// once; the old node closes its replica and deletes its files.
func TestMoveShardUnderLoad(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards, c.Replicas = testShards, 2 })
	from := tc.waitMap(2).Shards[0].Leader
	var fromNode *Node
	var fromCfg Config
	for i, n := range tc.nodes {
		if n.cfg.ID == from {
			fromNode, fromCfg = n, tc.cfgs[i]
		}
	}
	cl := tc.client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var customers []int32
	for c := int32(0); len(customers) < 4; c++ {
		if shard.Of(c, testShards) == 0 {
			customers = append(customers, c)
		}
	}
	stop := make(chan struct{})
	acked := make([]int, len(customers))
	done := make(chan error, 1)
	go func() {
		for k := int32(1); ; k++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			for i, c := range customers {
				if _, err := cl.Order(ctx, c, k, wire.Regular); err != nil {
					done <- fmt.Errorf("order %d of customer %d: %w", k, c, err)
					return
				}
				acked[i]++
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	var steps []string
	if err := cl.MoveShard(ctx, 0, from, "n3", func(s string) { steps = append(steps, s) }); err != nil {
		t.Fatalf("move: %v (steps %v)", err, steps)
	}
	t.Logf("steps: %v", steps)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := cl.MoveShard(ctx, 0, from, "n3", func(string) {}); err != nil {
		t.Fatalf("the move again: %v", err)
	}
	m, err := cl.ShardMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range m.Shards[0].Replicas {
		if !r.Voter {
			t.Fatalf("shard 0 after the move: %+v", m.Shards[0])
		}
		ids = append(ids, r.ID)
	}
	if len(ids) != 2 || !slices.Contains(ids, "n3") || slices.Contains(ids, from) {
		t.Fatalf("shard 0's replicas after moving it from %s to n3: %v", from, ids)
	}
	for i, c := range customers {
		rec, err := cl.Get(ctx, c, wire.Linearizable)
		if err != nil || int(rec.OrderCount) != acked[i] {
			t.Fatalf("customer %d: %+v, %v; want %d orders", c, rec, err, acked[i])
		}
	}
	// dropShard unpublishes the replica first, then closes it and moves
	// its files aside: wait for both.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(shardDir(fromCfg.DataDir, 0))
		aside, _ := filepath.Glob(shardDir(fromCfg.DataDir, 0) + droppedSuffix + "*")
		if fromNode.replicas()[0] == nil && errors.Is(err, os.ErrNotExist) && len(aside) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds shard 0 (replica open %v, dir: %v, set aside: %v)", from, fromNode.replicas()[0] != nil, err, aside)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBalanceShards: after a move leaves one node with three replicas and
// another with one, balance moves one back and spreads the leaders.
func TestBalanceShards(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards, c.Replicas = testShards, 2 })
	m := tc.waitMap(2)
	cl := tc.client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Shard 0 is on n1 and n2: move it from n1 to n3, which then holds
	// every shard and n1 one.
	if r := m.Shards[0].Replicas; r[0].ID != "n1" && r[1].ID != "n1" {
		t.Fatalf("shard 0 placed on %+v, want n1 among them", r)
	}
	if err := cl.MoveShard(ctx, 0, "n1", "n3", func(string) {}); err != nil {
		t.Fatal(err)
	}
	// n3 holds every shard now: let it lead them all.
	for id := range uint32(testShards) {
		resp := tc.callFollowing(t, tc.nodes[0], wire.ShardMember{Shard: id, Op: wire.ShardLeadTo, ID: "n3"})
		if _, ok := resp.(wire.OK); !ok {
			t.Fatalf("shard %d to n3: %v", id, resp)
		}
	}
	var steps []string
	if err := cl.BalanceShards(ctx, func(s string) { steps = append(steps, s) }); err != nil {
		t.Fatalf("balance: %v (steps %v)", err, steps)
	}
	t.Logf("balance: %v", steps)
	m, err := cl.ShardMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held, led := map[string]int{}, map[string]int{}
	for _, s := range m.Shards {
		for _, r := range s.Replicas {
			held[r.ID]++
		}
		led[s.Leader]++
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if held[id] != 2 || led[id] != 1 {
			t.Fatalf("after balance: replicas %v, leaders %v; want 2 and 1 on each node", held, led)
		}
	}
}

// reopen opens a node again on its ports. Another test process may have
// taken one of them for a moment while it was closed (freeport hands out
// ports nothing listens on): that is retried for a few seconds.
func reopen(cfg Config) (*Node, error) {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, err := Open(cfg)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return n, err
		}
	}
}

// TestLostDiskHoldsShardVotes: a node of a sharded cluster comes back with
// an empty data dir. Its replicas of the shards hold their votes, as its
// meta group's do, until each has caught up with its shard's leader;
// then they hold every order.
func TestLostDiskHoldsShardVotes(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards = testShards })
	tc.waitMap(3)
	seqs := map[uint32]uint64{}
	for c := int32(0); c < 12; c++ {
		id := shard.Of(c, testShards)
		seqs[id]++
		if _, ok := tc.callFollowing(t, tc.nodes[1], wire.Order{CustomerID: c, OrderNumber: 1, ClientID: 4, Seq: seqs[id]}).(wire.LaptopInfo); !ok {
			t.Fatalf("order of customer %d", c)
		}
	}
	if err := tc.nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	tc.nodes[0] = nil
	if err := os.RemoveAll(tc.cfgs[0].DataDir); err != nil {
		t.Fatal(err)
	}
	n, err := reopen(tc.cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	tc.nodes[0] = n
	for _, r := range n.dataReplicas() {
		if !r.gate.closed.Load() {
			t.Fatalf("shard %d of a node that lost its disk votes before it caught up", r.shard)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for c := int32(0); c < 12; c++ {
		for {
			rec, ok := call(t, n, wire.Get{CustomerID: c, Consistency: wire.Stale}).(wire.Record)
			if ok && rec.OrderCount == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("customer %d on the rebuilt node: %v", c, rec)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, r := range n.dataReplicas() {
		for r.gate.closed.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("shard %d's votes still held after it caught up", r.shard)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
