package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"orderly/client"
	"orderly/harness"
	"orderly/internal/freeport"
	"orderly/shard"
	"orderly/wire"
)

const e2eShards = 3

// shardList is `orderctl shards list --json`.
type shardList struct {
	Shards []struct {
		ID        uint32 `json:"id"`
		Customers string `json:"customers"`
		Leader    string `json:"leader"`
		Epoch     uint64 `json:"epoch"`
		Replicas  []struct {
			ID    string `json:"id"`
			Voter bool   `json:"voter"`
		} `json:"replicas"`
	} `json:"shards"`
}

func shardsOf(t *testing.T, addrs []string) shardList {
	t.Helper()
	out := mustOrderctl(t, addrs, "--json", "shards", "list")
	var l shardList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("shards list --json: %v\n%s", err, out)
	}
	var keys struct {
		Shards []map[string]json.RawMessage `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatal(err)
	}
	for _, s := range keys.Shards {
		if len(s) != 5 || s["id"] == nil || s["customers"] == nil || s["leader"] == nil || s["epoch"] == nil || s["replicas"] == nil {
			t.Fatalf("a shard of shards list --json has keys other than id, customers, leader, epoch, replicas: %s", out)
		}
	}
	return l
}

// shardLeaderOf waits for a leader of shard id in the map and returns its
// node.
func shardLeaderOf(t *testing.T, c *harness.Cluster, id uint32) *harness.Node {
	t.Helper()
	var leader *harness.Node
	waitFor(t, 30*time.Second, "a leader of every shard", func() bool {
		l := shardsOf(t, c.Addrs())
		if len(l.Shards) != e2eShards {
			t.Fatalf("%d shards, want %d", len(l.Shards), e2eShards)
		}
		leader = c.Node(l.Shards[id].Leader)
		return leader != nil && leader.Running()
	})
	return leader
}

// TestShardedCluster: a 3-node cluster of 3 shards, through the built
// binaries. Orders of many customers, some through the balancer and some
// straight to the nodes, land in their shards once each; a SIGKILL of
// one shard's leader does not stop the shards it did not lead; a scan
// crosses every shard in customer order; the seed's port writes into
// every shard; a restart keeps everything.
func TestShardedCluster(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true, Extra: []string{"--shards", "3"}})
	lb := startBalancer(t, c)
	var l shardList
	waitFor(t, 30*time.Second, "every shard to elect a leader", func() bool {
		l = shardsOf(t, c.Addrs())
		for _, s := range l.Shards {
			if s.Leader == "" || s.Epoch == 0 {
				return false
			}
		}
		return len(l.Shards) == e2eShards
	})
	for i, s := range l.Shards {
		lo, hi := shard.Range(uint32(i), e2eShards)
		if s.ID != uint32(i) || len(s.Replicas) != 3 || s.Epoch == 0 || s.Customers != "slots "+itoa(lo)+"-"+itoa(hi-1) {
			t.Fatalf("shard %d: %+v", i, s)
		}
	}

	const customers, orders = 24, 30
	var wg sync.WaitGroup
	errs := make(chan error, customers)
	for cust := range int32(customers) {
		addrs := c.Addrs()
		if cust%2 == 0 {
			addrs = []string{lb.Addr}
		}
		cl := mustClient(t, addrs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int32(1); k <= orders; k++ {
				if _, err := cl.Order(context.Background(), cust, k, wire.LaptopType(k%2)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("an order failed: %v", err)
	}
	checkCounts := func(when string, counts func(int32) int64) {
		t.Helper()
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			cl := mustClient(t, n.ClientAddr)
			for cust := range int32(customers) {
				if r := mustGet(t, cl, cust, wire.Linearizable); int64(r.OrderCount) != counts(cust) {
					t.Fatalf("%s: customer %d (shard %d) has %d orders on %s, want %d", when, cust, shard.Of(cust, e2eShards), r.OrderCount, n.ID, counts(cust))
				}
			}
		}
	}
	extra := map[int32]int64{}
	counts := func(cust int32) int64 { return orders + extra[cust] }
	checkCounts("after the load", counts)

	// A scan walks every shard's customers once, in order.
	cl := mustClient(t, lb.Addr)
	var seen []int32
	for from := int32(0); from >= 0; {
		page, err := cl.Scan(context.Background(), from, 5, wire.Linearizable)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			seen = append(seen, r.CustomerID)
		}
		from = page.Next
	}
	for i, cust := range seen {
		if cust != int32(i) || i >= customers {
			t.Fatalf("scan across shards: %v", seen)
		}
	}

	// One customer's change feed is its shard's: through the balancer
	// and straight from the nodes, it holds each of its orders once.
	for _, addrs := range [][]string{{lb.Addr}, c.Addrs()} {
		for _, cust := range []int32{0, 1, 2} {
			ctx, cancel := context.WithCancel(context.Background())
			var got []int32
			err := mustClient(t, addrs...).Watch(ctx, 1, cust, func(e wire.Events) error {
				for _, ev := range e.Events {
					if ev.CustomerID != cust {
						return fmt.Errorf("customer %d's feed carried customer %d", cust, ev.CustomerID)
					}
					got = append(got, ev.OrderNumber)
				}
				if len(got) >= orders {
					cancel()
				}
				return nil
			})
			cancel()
			if err != nil || len(got) != orders || got[0] != 1 || got[orders-1] != orders {
				t.Fatalf("watch of customer %d (shard %d) through %v: %v, saw %v", cust, shard.Of(cust, e2eShards), addrs, err, got)
			}
		}
	}
	// Every customer's feed, shard by shard: through the balancer and
	// straight from the nodes, and as Server-Sent Events resumed with
	// Last-Event-ID (a position per shard), each order once.
	for _, addrs := range [][]string{{lb.Addr}, c.Addrs()} {
		watchEveryCustomer(t, mustClient(t, addrs...), customers, orders)
	}
	reader := newAPIClient(t, lb.HTTPAddr, "reader")
	watchEveryCustomerSSE(t, reader, customers, orders)
	// A position that cannot say which shard, or names too few: 400, and
	// the same refusals from orderctl watch.
	for _, q := range []string{"from_index=5", "from_positions=1.1", "from_positions=1.x.1"} {
		if status, _ := watchAPI(context.Background(), t, reader, q, ""); status != http.StatusBadRequest {
			t.Fatalf("GET /v1/watch?%s of a sharded cluster: %d, want 400", q, status)
		}
	}
	for _, args := range [][]string{{"--from-index", "5"}, {"--from-positions", "1.1"}} {
		if out, err := orderctl(t, []string{lb.Addr}, append([]string{"watch", "--for", "1s"}, args...)...); err == nil ||
			!strings.Contains(out, "position") {
			t.Fatalf("orderctl watch %v of a sharded cluster: %v\n%s", args, err, out)
		}
	}
	var refused *wire.Error
	if err := mustClient(t, lb.Addr).Watch(context.Background(), 1, wire.WatchAll, func(wire.Events) error { return nil }); !errors.As(err, &refused) || refused.Code != wire.CodeBadRequest {
		t.Fatalf("a watch of every customer of a sharded cluster by one index: %v, want BadRequest", err)
	}

	// The seed's port: one connection writes customers of every shard.
	seed := legacyDial(t, lb.LegacyAddr)
	for cust := range int32(e2eShards * 2) {
		if got := seed.order(cust, 1000, 0); got[0] != cust {
			t.Fatalf("seed order of customer %d (shard %d): %v", cust, shard.Of(cust, e2eShards), got)
		}
		extra[cust]++
	}

	// Kill the leader of shard 1; the shards it did not lead go on.
	victim := shardLeaderOf(t, c, 1)
	others := map[uint32]bool{}
	for id := range uint32(e2eShards) {
		if shardLeaderOf(t, c, id) != victim {
			others[id] = true
		}
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	var survivors []string
	for _, n := range c.Nodes {
		if n != victim {
			survivors = append(survivors, n.ClientAddr)
		}
	}
	direct := mustClient(t, survivors...)
	for cust := range int32(customers) {
		if !others[shard.Of(cust, e2eShards)] {
			continue
		}
		if _, err := direct.Order(context.Background(), cust, 2000, wire.Regular); err != nil {
			t.Fatalf("customer %d of shard %d, whose leader lives: %v", cust, shard.Of(cust, e2eShards), err)
		}
		extra[cust]++
	}
	t.Logf("killed %s; shards led elsewhere: %v", victim.ID, others)
	for cust := range int32(customers) { // every shard again, after its failover
		if _, err := direct.Order(context.Background(), cust, 3000, wire.Regular); err != nil {
			t.Fatalf("customer %d after the failover: %v", cust, err)
		}
		extra[cust]++
	}
	if err := c.Start(victim); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := victim.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts("after the SIGKILL and restart", counts)
}

// watchEveryCustomer follows every shard's feed from its first index
// until it has seen orders 1..orders of each of customers: each once, in
// order, in its own shard's feed.
func watchEveryCustomer(t *testing.T, cl *client.Client, customers int32, orders int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := map[int32]int32{}
	total := 0
	err := cl.WatchShards(ctx, []uint64{1, 1, 1}, func(sh uint32, e wire.Events) error {
		for _, ev := range e.Events {
			if ev.CustomerID >= customers || ev.OrderNumber > orders {
				continue // the seed port's and later orders
			}
			if shard.Of(ev.CustomerID, e2eShards) != sh || ev.OrderNumber != next[ev.CustomerID]+1 {
				return fmt.Errorf("shard %d delivered order %d of customer %d after %d", sh, ev.OrderNumber, ev.CustomerID, next[ev.CustomerID])
			}
			next[ev.CustomerID] = ev.OrderNumber
			if total++; total == int(customers*orders) {
				cancel()
			}
		}
		return nil
	})
	if err != nil || total != int(customers*orders) {
		t.Fatalf("watch of every customer: %v after %d of %d orders", err, total, customers*orders)
	}
}

// watchEveryCustomerSSE reads GET /v1/watch of every customer from the
// first index of each shard, stops half way, and resumes after the last
// event id it had (a position per shard): each order comes once.
func watchEveryCustomerSSE(t *testing.T, r *apiClient, customers int32, orders int32) {
	t.Helper()
	type order struct{ customer, number int32 }
	seen := map[order]int{}
	total := 0
	// read takes events until until() holds; the orders of an entry count
	// once its id (the position after it) has come, as a resuming client
	// must count them.
	read := func(events <-chan sseEvent, until func() bool) string {
		var pending []order
		lastID := ""
		timeout := time.After(30 * time.Second)
		for !until() {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("the stream ended early")
				}
				if ev.name == "order" {
					var e struct {
						Customer, Number int32
						Shard            *uint32
					}
					if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
						t.Fatal(err)
					}
					if e.Shard == nil || *e.Shard != shard.Of(e.Customer, e2eShards) {
						t.Fatalf("order event %s: shard missing or wrong", ev.data)
					}
					pending = append(pending, order{e.Customer, e.Number})
				} else if ev.name != "progress" {
					t.Fatalf("event %+v", ev)
				}
				if ev.id == "" {
					continue
				}
				if strings.Count(ev.id, ".") != e2eShards-1 {
					t.Fatalf("event id %q: want a position per shard", ev.id)
				}
				for _, o := range pending {
					if o.customer < customers && o.number <= orders {
						seen[o]++
						total++
					}
				}
				pending, lastID = nil, ev.id
			case <-timeout:
				t.Fatalf("30 s without the orders awaited; %d seen", total)
			}
		}
		return lastID
	}
	ctx, cancel := context.WithCancel(context.Background())
	status, events := watchAPI(ctx, t, r, "from_positions=1.1.1", "")
	if status != http.StatusOK {
		t.Fatalf("watch: %d", status)
	}
	lastID := read(events, func() bool { return total >= int(customers*orders)/2 })
	cancel()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if status, events = watchAPI(ctx, t, r, "", lastID); status != http.StatusOK {
		t.Fatalf("resume after %s: %d", lastID, status)
	}
	read(events, func() bool { return total >= int(customers*orders) })
	for cust := range customers {
		for k := int32(1); k <= orders; k++ {
			if seen[order{cust, k}] != 1 {
				t.Fatalf("order %d of customer %d seen %d times, want once", k, cust, seen[order{cust, k}])
			}
		}
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// TestShardsOnSomeNodes: 3 shards of 2 replicas over 3 nodes. Clients and
// the balancer follow WrongShard from a node that holds no replica of a
// customer's shard; every order lands once.
func TestShardsOnSomeNodes(t *testing.T) {
	c := startCluster(t, "--shards", "3", "--replicas", "2")
	lb := startBalancer(t, c)
	waitFor(t, 30*time.Second, "every shard's leader in the map", func() bool {
		l := shardsOf(t, c.Addrs())
		for _, s := range l.Shards {
			if s.Leader == "" || len(s.Replicas) != 2 {
				return false
			}
		}
		return len(l.Shards) == e2eShards
	})
	// status --all shows every group of every node: each node's two
	// replicas, one of each shard's leading.
	var all []struct {
		ID     string `json:"id"`
		Shards []struct {
			Shard uint32 `json:"shard"`
			Role  string `json:"role"`
		} `json:"shards"`
	}
	if err := json.Unmarshal([]byte(mustOrderctl(t, c.Addrs(), "--json", "status", "--all")), &all); err != nil {
		t.Fatal(err)
	}
	leaders := map[uint32]int{}
	for _, n := range all {
		if len(n.Shards) != 2 {
			t.Fatalf("status --all: %s shows %d shards, want 2: %+v", n.ID, len(n.Shards), all)
		}
		for _, r := range n.Shards {
			if r.Role == "leader" {
				leaders[r.Shard]++
			}
		}
	}
	if len(leaders) != e2eShards {
		t.Fatalf("status --all: leaders by shard %v, want one of each", leaders)
	}

	const customers, orders = 12, 10
	for cust := range int32(customers) {
		addrs := []string{c.Nodes[int(cust)%len(c.Nodes)].ClientAddr} // each client starts at one node
		if cust%3 == 0 {
			addrs = []string{lb.Addr}
		}
		cl := mustClient(t, addrs...)
		for k := int32(1); k <= orders; k++ {
			if _, err := cl.Order(context.Background(), cust, k, wire.Regular); err != nil {
				t.Fatalf("customer %d (shard %d) order %d through %v: %v", cust, shard.Of(cust, e2eShards), k, addrs, err)
			}
		}
		if r := mustGet(t, cl, cust, wire.Linearizable); r.OrderCount != orders {
			t.Fatalf("customer %d has %d orders, want %d", cust, r.OrderCount, orders)
		}
	}
}

// joiningNode is an orderd started with no --peers (it waits to be added),
// which the test may kill and start again on the same data dir.
type joiningNode struct {
	id, raftAddr, clientAddr string
	args                     []string
	cmd                      *exec.Cmd
}

func startJoiningNode(t *testing.T, id string, extra ...string) *joiningNode {
	t.Helper()
	n := &joiningNode{id: id}
	n.raftAddr, _ = freeport.Addr("127.0.0.1")
	n.clientAddr, _ = freeport.Addr("127.0.0.1")
	n.args = append([]string{"--id", id, "--data-dir", filepath.Join(t.TempDir(), id),
		"--raft-addr", n.raftAddr, "--client-addr", n.clientAddr}, append(certs.Flags(id), extra...)...)
	n.start(t)
	t.Cleanup(n.kill)
	return n
}

func (n *joiningNode) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(filepath.Join(bin, "orderd"), n.args...)
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (n *joiningNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	}
}

// TestMoveShardToANewNode: a node joins a 3-shard cluster and takes shard
// 1's replica from its leader, under load. The new node is SIGKILLed in
// the middle of the move: the shard goes on serving, and the same move
// run again finishes it. Every acknowledged order is there once.
func TestMoveShardToANewNode(t *testing.T) {
	c := startCluster(t, "--shards", "3")
	var from string
	waitFor(t, 30*time.Second, "every shard's leader in the map", func() bool {
		l := shardsOf(t, c.Addrs())
		for _, s := range l.Shards {
			if s.Leader == "" {
				return false
			}
		}
		from = l.Shards[1].Leader
		return true
	})
	n4 := startJoiningNode(t, "n4", "--shards", "3")
	mustOrderctl(t, c.Addrs(), "members", "add", "--id", "n4", "--raft-addr", n4.raftAddr)

	const customers = 9
	load := mustClient(t, c.Addrs()...)
	acked := make([]int32, customers)
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for k := int32(1); ; k++ {
			for cust := range int32(customers) {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if _, err := load.Order(context.Background(), cust, k, wire.Regular); err != nil {
					done <- fmt.Errorf("customer %d order %d: %w", cust, k, err)
					return
				}
				acked[cust] = k
			}
		}
	}()

	argv := []string{"--addr", strings.Join(c.Addrs(), ","), "--timeout", "6s", "shards", "move", "--shard", "1", "--from", from, "--to", "n4"}
	move := exec.Command(filepath.Join(bin, "orderctl"), argv...)
	var moveOut bytes.Buffer
	move.Stdout, move.Stderr = &moveOut, &moveOut
	if err := move.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "n4 in shard 1's replicas", func() bool {
		for _, r := range shardsOf(t, c.Addrs()).Shards[1].Replicas {
			if r.ID == "n4" {
				return true
			}
		}
		return false
	})
	n4.kill()
	moveErr := move.Wait()
	t.Logf("the move, n4 killed in its middle: %v\n%s", moveErr, moveOut.String())
	// Shard 1 serves without n4.
	for cust := range int32(customers) {
		if shard.Of(cust, e2eShards) == 1 {
			if _, err := mustClient(t, c.Addrs()...).Order(context.Background(), cust, 1<<30, wire.Regular); err != nil {
				t.Fatalf("shard 1 with n4 down: %v", err)
			}
		}
	}

	n4.start(t)
	argv[3] = "60s"
	if out, err := exec.Command(filepath.Join(bin, "orderctl"), argv...).CombinedOutput(); err != nil {
		t.Fatalf("the move again: %v\n%s", err, out)
	} else {
		t.Logf("the move again:\n%s", out)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := shardsOf(t, c.Addrs()).Shards[1]
	var ids []string
	for _, r := range s.Replicas {
		if r.ID == from || !r.Voter {
			t.Fatalf("shard 1 after the move: %+v", s)
		}
		ids = append(ids, r.ID)
	}
	if !slices.Contains(ids, "n4") {
		t.Fatalf("shard 1 after the move to n4: %+v", s)
	}
	check := mustClient(t, append(c.Addrs(), n4.clientAddr)...)
	for cust := range int32(customers) {
		want := uint64(acked[cust])
		if shard.Of(cust, e2eShards) == 1 {
			want++ // the order placed while n4 was down
		}
		if r := mustGet(t, check, cust, wire.Linearizable); r.OrderCount != want {
			t.Fatalf("customer %d (shard %d) has %d orders, want %d", cust, shard.Of(cust, e2eShards), r.OrderCount, want)
		}
	}
}

// TestShardRequestsByRole: who may send the requests shards added, on a
// sharded cluster with mutual TLS. Readers read the map and a shard's
// status; only an admin takes a move's step (on the nodes and through the
// balancer); only a member node asks another for a shard's page, read
// index or publishes a map entry, and a node certificate that is not a
// member may not.
func TestShardRequestsByRole(t *testing.T) {
	c := startCluster(t, "--shards", "3")
	b := startBalancer(t, c)
	ctx := context.Background()
	node := c.Nodes[0].ClientAddr
	for _, addrs := range [][]string{c.Addrs(), {b.Addr}} {
		reader := clientAs(t, "reader", addrs...)
		if _, err := reader.ShardMap(ctx); err != nil {
			t.Errorf("a reader's shard map through %v: %v", addrs, err)
		}
		step := wire.ShardMember{Shard: 1, Op: wire.ShardRemove, ID: "n1"}
		for _, who := range []string{"reader", "writer"} {
			err := clientAs(t, who, addrs...).Admin(ctx, step)
			wantDenied(t, "a "+who+"'s move step through "+strings.Join(addrs, ","), err)
		}
	}
	if _, err := clientAs(t, "reader", node).ShardStatusOf(ctx, node, 1); err != nil {
		t.Errorf("a reader's shard status: %v", err)
	}
	scan := wire.ShardScan{Shard: 1, Scan: wire.Scan{Limit: 10}}
	publish := wire.PublishShard{Shard: wire.ShardInfo{ID: 1, Epoch: 1 << 40, Leader: "n1"}, Term: 1 << 40}
	for _, who := range []string{"reader", "orderctl", "orderlb", fmt.Sprintf("n%d", harness.MaxNodeCert)} {
		conn := connAs(t, who, node)
		for _, req := range []wire.Message{scan, wire.ShardReadIndex{Shard: 1}, publish} {
			if who == "orderlb" && req.Type() == wire.TypeShardReadIndex {
				continue // a balancer may ask a read index, as of shard 0's
			}
			_, err := conn.Call(ctx, req)
			wantDenied(t, who+"'s "+req.Type().String(), err)
		}
		conn.Close()
	}
}
