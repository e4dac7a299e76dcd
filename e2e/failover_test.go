package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// TestKillLeaderLosesNothing: 8 customers place 200 orders each while the
// leader is SIGKILLed halfway. Every acknowledged order must be there once,
// the killed node must catch up from its data dir, and a restart of the
// whole cluster must keep everything. On both log stores.
func TestKillLeaderLosesNothing(t *testing.T) {
	for _, store := range []string{"wal", "boltdb"} {
		t.Run(store, func(t *testing.T) { killLeaderLosesNothing(t, store) })
	}
}

func killLeaderLosesNothing(t *testing.T, store string) {
	const customers, orders = 8, 200
	c := startCluster(t, "--log-store", store)

	var acked [customers]atomic.Int64
	var total atomic.Int64
	var firstAfterKill atomic.Int64 // unix nanos of the first ack after the kill
	var killedAt atomic.Int64
	errs := make(chan error, customers)
	var wg sync.WaitGroup
	for i := 0; i < customers; i++ {
		wg.Add(1)
		go func(cust int32) {
			defer wg.Done()
			cl := mustClient(t, c.Addrs()...)
			for k := int32(1); k <= orders; k++ {
				typ := wire.Regular
				if k%4 == 0 {
					typ = wire.Custom
				}
				li, err := cl.Order(context.Background(), cust, k, typ)
				if err != nil {
					errs <- err
					return
				}
				if li.CustomerID != cust || li.OrderNumber != k {
					t.Errorf("order %d/%d answered %+v", cust, k, li)
				}
				acked[cust].Add(1)
				total.Add(1)
				if killedAt.Load() != 0 {
					firstAfterKill.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}(int32(i))
	}

	waitFor(t, 60*time.Second, "half of the orders", func() bool { return total.Load() >= customers*orders/2 })
	leader := mustLeader(t, c)
	killedAt.Store(time.Now().UnixNano())
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a customer saw an error: %v", err)
	}
	if f := firstAfterKill.Load(); f != 0 {
		t.Logf("SIGKILL of leader %s to first acknowledged write: %v", leader.ID, time.Duration(f-killedAt.Load()))
	}

	check := func(when string) {
		t.Helper()
		cl := mustClient(t, c.Addrs()...)
		for i := 0; i < customers; i++ {
			r := mustGet(t, cl, int32(i), wire.Linearizable)
			if int64(r.OrderCount) != acked[i].Load() || r.LastOrder != orders {
				t.Fatalf("%s: customer %d has %d orders (last %d), acknowledged %d (last %d)",
					when, i, r.OrderCount, r.LastOrder, acked[i].Load(), orders)
			}
		}
	}
	check("after the kill")

	// The killed node restarts from its data dir and catches up.
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	newLeader := mustLeader(t, c)
	want, err := harness.Status(context.Background(), newLeader.ClientAddr, certs.Admin())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the restarted node to catch up", func() bool {
		s, err := harness.Status(context.Background(), leader.ClientAddr, certs.Admin())
		return err == nil && s.AppliedIndex >= want.AppliedIndex
	})
	local := mustClient(t, leader.ClientAddr)
	for i := 0; i < customers; i++ {
		if r := mustGet(t, local, int32(i), wire.Stale); int64(r.OrderCount) != acked[i].Load() {
			t.Fatalf("restarted node: customer %d has %d orders, want %d", i, r.OrderCount, acked[i].Load())
		}
	}

	// A restart of the whole cluster keeps everything.
	for _, n := range c.Nodes {
		if err := n.Terminate(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	mustLeader(t, c)
	check("after a full restart")
}
