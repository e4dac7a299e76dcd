package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/wire"
)

// TestFollowerLinearizableReads: while one client keeps ordering for a
// customer, readers on the followers must never see an order older than
// one acknowledged before their read started.
func TestFollowerLinearizableReads(t *testing.T) {
	c := startCluster(t)
	leader := mustLeader(t, c)
	var followers []string
	for _, n := range followersOf(c, leader) {
		followers = append(followers, n.ClientAddr)
	}

	const customer = 42
	acked, stopWriter := startWriter(t, leader.ClientAddr, customer)
	var wg sync.WaitGroup

	var reads, stale atomic.Int64
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			cl := mustClient(t, addr) // this follower only: no fallback to the leader
			for i := 0; i < 300; i++ {
				before := acked.Load()
				rec, err := cl.Get(context.Background(), customer, wire.Linearizable)
				if err != nil {
					t.Errorf("read on %s: %v", addr, err)
					return
				}
				reads.Add(1)
				if before > 0 && rec.LastOrder < before {
					stale.Add(1)
					t.Errorf("stale read on %s: last order %d, but %d was acknowledged before the read", addr, rec.LastOrder, before)
				}
			}
		}(followers[r%len(followers)])
	}
	time.Sleep(100 * time.Millisecond) // let readers and writer overlap from the start
	for reads.Load() < 8*300 && !t.Failed() {
		time.Sleep(20 * time.Millisecond)
	}
	stopWriter()
	wg.Wait()
	if acked.Load() < 10 {
		t.Fatalf("only %d writes during the reads: the check did not overlap writes", acked.Load())
	}
	t.Logf("%d linearizable follower reads under %d writes, %d stale", reads.Load(), acked.Load(), stale.Load())
}

// startWriter orders for one customer through addr, numbers 1, 2, ...,
// until stopped; acked is the highest number acknowledged (0: none yet).
func startWriter(t *testing.T, addr string, customer int32) (acked *atomic.Int32, stop func()) {
	acked = new(atomic.Int32)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		w := mustClient(t, addr)
		for k := int32(1); ; k++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := w.Order(context.Background(), customer, k, wire.Regular); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			acked.Store(k)
		}
	}()
	return acked, func() { close(done); <-finished }
}
