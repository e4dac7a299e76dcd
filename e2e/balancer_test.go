package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// lbStats reads the balancer's counters.
func lbStats(t *testing.T, addr string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := harness.Status(ctx, addr, certs.Admin())
	if err != nil {
		t.Fatalf("balancer status: %v", err)
	}
	out := map[string]uint64{}
	for _, st := range s.Stats {
		out[st.Name] = st.Value
	}
	return out
}

// TestBalancerSurvivesLeaderKills: 8 customers place 200 orders each
// through the balancer, on raw connections with no retries of their own,
// while the leader is SIGKILLed twice and restarted. The customers must
// see no error at all, and every order must be applied exactly once.
func TestBalancerSurvivesLeaderKills(t *testing.T) { balancerSurvivesLeaderKills(t, false) }

// TestBalancerSurvivesLeaderKillsBesideAFlood: the same while four
// connections flood one customer through the balancer, so that the
// leader connection's window is full and orders wait for their turn in
// the balancer's share (lb/share.go) when the leader dies: those that
// waited and those in flight go on to the next leader, each once.
func TestBalancerSurvivesLeaderKillsBesideAFlood(t *testing.T) { balancerSurvivesLeaderKills(t, true) }

func balancerSurvivesLeaderKills(t *testing.T, flood bool) {
	const customers, orders = 8, 200
	c := startCluster(t)
	b := startBalancer(t, c)
	if flood {
		floodOneCustomer(t, b.Addr, 4, 100_000)
	}

	var total atomic.Int64
	var longest [customers]time.Duration
	errs := make(chan error, customers)
	var wg sync.WaitGroup
	for i := range customers {
		wg.Add(1)
		go func(cust int32) {
			defer wg.Done()
			conn, err := wire.Dial(context.Background(), b.Addr, wire.DialOptions{TLS: certs.Admin()})
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			for k := int32(1); k <= orders; k++ {
				typ := wire.Regular
				if k%4 == 0 {
					typ = wire.Custom
				}
				o := wire.Order{CustomerID: cust, OrderNumber: k, LaptopType: typ, ClientID: uint64(5000 + cust), Seq: uint64(k)}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				li, err := conn.Order(ctx, o)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("customer %d order %d: %w", cust, k, err)
					return
				}
				longest[cust] = max(longest[cust], time.Since(start))
				if li.CustomerID != cust || li.OrderNumber != k || li.OrderCount != uint64(k) {
					errs <- fmt.Errorf("order %d/%d answered %+v", cust, k, li)
					return
				}
				total.Add(1)
				time.Sleep(10 * time.Millisecond) // pace: both kills must land mid-run
			}
		}(int32(i))
	}
	for round, at := range []int64{customers * orders / 3, customers * orders * 2 / 3} {
		waitFor(t, 90*time.Second, "orders before the kill", func() bool { return total.Load() >= at || len(errs) > 0 })
		if len(errs) > 0 {
			break // a customer stopped on an error: said below
		}
		leader := mustLeader(t, c)
		if err := leader.Kill(); err != nil {
			t.Fatal(err)
		}
		done := total.Load()
		t.Logf("kill %d: SIGKILLed leader %s after %d orders", round+1, leader.ID, done)
		if done >= customers*orders-customers {
			t.Fatalf("kill %d came after the customers were done: it tested nothing", round+1)
		}
		time.Sleep(500 * time.Millisecond)
		if err := c.Start(leader); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a customer saw an error through the balancer: %v", err)
	}
	var worst time.Duration
	for _, d := range longest {
		worst = max(worst, d)
	}
	t.Logf("longest pause a customer saw: %v", worst)

	cl := mustClient(t, b.Addr)
	for i := range customers {
		r := mustGet(t, cl, int32(i), wire.Linearizable)
		if r.OrderCount != orders || r.LastOrder != orders {
			t.Errorf("customer %d: %d orders (last %d), want exactly %d", i, r.OrderCount, r.LastOrder, orders)
		}
	}
	st := lbStats(t, b.Addr)
	t.Logf("balancer: %d requests, %d retries, %d redirects, %d failures", st["requests"], st["retries"], st["redirects"], st["failures"])
	if st["failures"] != 0 && !flood { // the flood's own orders may fail
		t.Errorf("balancer counted %d failed requests", st["failures"])
	}
}

// TestBalancerReads: linearizable reads through the balancer, answered
// from its coherent cache behind a read index, are never stale under
// concurrent writes and a SIGKILL of the leader; session reads see the
// client's own writes (served from the cache); stale reads return a value
// that was written at some time. Of one group, and of three shards (a
// feed and a read index per shard).
func TestBalancerReads(t *testing.T) {
	t.Run("one group", func(t *testing.T) { balancerReads(t, startCluster(t)) })
	t.Run("3 shards", func(t *testing.T) { balancerReads(t, startCluster(t, "--shards", "3")) })
}

func balancerReads(t *testing.T, c *harness.Cluster) {
	b := startBalancer(t, c, "--cache-size", "1000")

	const customer = 7
	acked, stopWriter := startWriter(t, b.Addr, customer)
	var wg sync.WaitGroup

	var reads, stale atomic.Int64
	for r := range 8 {
		wg.Add(1)
		go func(cons wire.Consistency) {
			defer wg.Done()
			cl := mustClient(t, b.Addr)
			for range 200 {
				before := acked.Load()
				rec, err := cl.Get(context.Background(), customer, cons)
				if err != nil {
					t.Errorf("%s read: %v", cons, err)
					return
				}
				reads.Add(1)
				after := acked.Load()
				switch {
				case cons == wire.Linearizable && before > 0 && rec.LastOrder < before:
					stale.Add(1)
					t.Errorf("stale linearizable read: last order %d, %d was acknowledged before", rec.LastOrder, before)
				case rec.LastOrder > after+1: // the writer has one order in flight
					t.Errorf("%s read of order %d, but only %d were acknowledged", cons, rec.LastOrder, after)
				case rec.LastOrder != wire.NoOrder && int64(rec.OrderCount) != int64(rec.LastOrder):
					t.Errorf("%s read is no state that ever was: last order %d with count %d", cons, rec.LastOrder, rec.OrderCount)
				}
			}
		}([]wire.Consistency{wire.Linearizable, wire.Linearizable, wire.Linearizable, wire.Stale}[r%4])
	}

	// Session: each write is visible to the same client's next session
	// read, whichever node or cache entry answers it.
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl := mustClient(t, b.Addr)
		const own = 8
		for k := int32(1); k <= 100; k++ {
			if _, err := cl.Order(context.Background(), own, k, wire.Regular); err != nil {
				t.Errorf("session writer: %v", err)
				return
			}
			rec, err := cl.Get(context.Background(), own, wire.Session)
			if err != nil {
				t.Errorf("session read: %v", err)
				return
			}
			if rec.LastOrder != k {
				t.Errorf("session read after writing order %d saw %d", k, rec.LastOrder)
			}
		}
	}()

	time.Sleep(100 * time.Millisecond)
	waitFor(t, 30*time.Second, "a third of the reads", func() bool { return reads.Load() >= 8*200/3 || t.Failed() })
	if err := mustLeader(t, c).Kill(); err != nil {
		t.Fatal(err)
	}
	for reads.Load() < 8*200 && !t.Failed() {
		time.Sleep(20 * time.Millisecond)
	}
	stopWriter()
	wg.Wait()
	if acked.Load() < 10 {
		t.Fatalf("only %d writes during the reads: the check did not overlap writes", acked.Load())
	}
	st := lbStats(t, b.Addr)
	t.Logf("%d reads under %d writes and a leader kill, %d stale; cache hits %d (linearizable %d) misses %d",
		reads.Load(), acked.Load(), stale.Load(), st["cache_hits"], st["cache_linearizable_hits"], st["cache_misses"])
	if st["cache_hits"] < 100 {
		t.Errorf("cache hits %d: session reads after the client's own writes should be served from the cache", st["cache_hits"])
	}
	if st["cache_linearizable_hits"] < 100 || st["cache_coherent"] != 1 {
		t.Errorf("linearizable cache hits %d, coherent %d: the balancer should answer them from its cache", st["cache_linearizable_hits"], st["cache_coherent"])
	}
}

// TestBalancerCache: the LRU keeps --cache-size entries, counts hits,
// misses and evictions, and a write refreshes its customer's entry.
func TestBalancerCache(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c, "--cache-size", "5", "--cache-linearizable=false")
	cl := mustClient(t, b.Addr)
	ctx := context.Background()
	for cust := range int32(20) {
		if _, err := cl.Order(ctx, cust, 1, wire.Regular); err != nil {
			t.Fatal(err)
		}
	}
	st := lbStats(t, b.Addr)
	if st["cache_size"] != 5 || st["cache_evictions"] != 15 {
		t.Fatalf("after writes to 20 customers: size %d evictions %d, want 5 and 15", st["cache_size"], st["cache_evictions"])
	}
	// The last five written are cached: stale reads of them hit.
	for cust := int32(15); cust < 20; cust++ {
		if r := mustGet(t, cl, cust, wire.Stale); r.LastOrder != 1 {
			t.Fatalf("customer %d: last order %d, want 1", cust, r.LastOrder)
		}
	}
	// Linearizable reads do not use the cache without its feed.
	mustGet(t, cl, 19, wire.Linearizable)
	after := lbStats(t, b.Addr)
	if hits := after["cache_hits"] - st["cache_hits"]; hits != 5 {
		t.Errorf("%d cache hits for 5 stale reads of cached customers (and one linearizable read), want 5", hits)
	}
	// A miss fills the entry; a write replaces it with the newer record.
	mustGet(t, cl, 0, wire.Stale)
	if _, err := cl.Order(ctx, 0, 2, wire.Custom); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, cl, 0, wire.Session); r.LastOrder != 2 || r.OrderCount != 2 || r.LastLaptopType != int8(wire.Custom) {
		t.Errorf("session read after the write: %+v, want order 2 of 2, custom", r.CustomerRecord)
	}
	final := lbStats(t, b.Addr)
	if final["cache_size"] > 5 {
		t.Errorf("cache holds %d entries, capacity 5", final["cache_size"])
	}
	if final["cache_misses"] <= after["cache_misses"] || final["cache_hits"] <= after["cache_hits"] {
		t.Errorf("the miss of customer 0 and the hit after its write were not counted: %v", final)
	}
}

// TestBalancerPausedNode: a follower paused with SIGSTOP must not block
// other clients: writes and reads through the balancer go on, the prober
// takes the node out of rotation, and it returns after SIGCONT. The
// reads go to the nodes (no linearizable cache), so some meet the paused
// one.
func TestBalancerPausedNode(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c, "--cache-linearizable=false")
	leader := mustLeader(t, c)
	paused := followersOf(c, leader)[1]
	if err := paused.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cl := mustClient(t, b.Addr)
	for k := int32(1); k <= 50; k++ {
		if _, err := cl.Order(context.Background(), 3, k, wire.Regular); err != nil {
			t.Fatalf("write with a follower paused: %v", err)
		}
		if r := mustGet(t, cl, 3, wire.Linearizable); r.LastOrder != k {
			t.Fatalf("linearizable read with a follower paused saw %d, want %d", r.LastOrder, k)
		}
	}
	waitFor(t, 5*time.Second, "the paused node out of rotation", func() bool {
		return lbStats(t, b.Addr)["backend_up "+paused.ClientAddr] == 0
	})
	if err := paused.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the resumed node back in rotation", func() bool {
		return lbStats(t, b.Addr)["backend_up "+paused.ClientAddr] == 1
	})
}

// TestBadInputOnBalancer: the orderly port of the balancer handles bad
// input as a node does.
func TestBadInputOnBalancer(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	checkBadInput(t, b.Addr)
}

// TestBalancerFollowsMembership: a balancer given only one follower learns
// the leader and the other members from the nodes' status, so writes work
// whoever leads; a node added later becomes a backend, and leaves it when
// removed.
func TestBalancerFollowsMembership(t *testing.T) {
	c := startCluster(t)
	leader := mustLeader(t, c)
	seed := followersOf(c, leader)[0]
	b := startBalancer(t, c, "--backends", seed.ClientAddr)
	backends := func() map[string]bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := harness.Status(ctx, b.Addr, certs.Admin())
		if err != nil {
			t.Fatalf("balancer status: %v", err)
		}
		out := map[string]bool{}
		for _, m := range s.Members {
			out[m.ClientAddr] = true
		}
		return out
	}
	waitFor(t, 10*time.Second, "the balancer to learn all three nodes", func() bool { return len(backends()) == 3 })
	// Writes through the balancer reach a leader it was never told of, and
	// go on when leadership moves.
	mustOrders(t, []string{b.Addr}, 9, 5)
	mustOrderctl(t, c.Addrs(), "transfer-leader")
	mustOrders(t, []string{b.Addr}, 10, 5)

	added := addEmptyNode(t, c.Addrs(), "n4")
	waitFor(t, 20*time.Second, "the balancer to add n4", func() bool { return backends()[added] })
	mustOrderctl(t, c.Addrs(), "members", "remove", "--id", "n4")
	waitFor(t, 20*time.Second, "the balancer to drop n4", func() bool { return !backends()[added] && len(backends()) == 3 })
	if r := mustGet(t, mustClient(t, b.Addr), 9, wire.Linearizable); r.OrderCount != 5 {
		t.Fatalf("customer 9 has %d orders through the balancer, want 5", r.OrderCount)
	}
}
