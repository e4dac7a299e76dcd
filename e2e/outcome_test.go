package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"orderly/client"
	"orderly/wire"
)

// TestKillAllInFlightOrdersAreUnknownNeverFailed: 16 sessions place
// orders until every node is SIGKILLed at once; each order in flight is
// resent into a dead cluster for the whole budget. Its caller must be told
// "unknown", never a sure failure (an order sent after the kill reaches
// no node: ErrUnreachable, not applied). One node restarts, without a
// quorum: RetryLast is refused for its whole budget and must still say
// unknown. Once all are back, RetryLast settles each order and every
// customer's record holds each order exactly once.
func TestKillAllInFlightOrdersAreUnknownNeverFailed(t *testing.T) {
	const sessions, budget = 16, 2 * time.Second
	c := startCluster(t)
	cl, err := client.New(client.Options{Addrs: c.Addrs(), RetryTimeout: budget, DialTimeout: budget, TLS: certs.Admin()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	type result struct {
		acked int64 // orders answered
		err   error // how the last one ended
		s     *client.Session
	}
	results := make([]result, sessions)
	var total atomic.Int64
	var wg sync.WaitGroup
	for i := range results {
		s, err := cl.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		results[i].s = s
		wg.Add(1)
		go func(r *result, cust int32) {
			defer wg.Done()
			for n := int32(1); ; n++ {
				if _, err := r.s.Order(context.Background(), cust, n, wire.Regular); err != nil {
					r.err = err
					return
				}
				r.acked++
				total.Add(1)
			}
		}(&results[i], int32(i))
	}
	waitFor(t, 30*time.Second, "orders to flow", func() bool { return total.Load() >= 300 })
	for _, n := range c.Nodes { // within milliseconds: signal all, then wait
		if err := n.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		n.Kill() //nolint:errcheck // already dying; this waits for it
	}
	wg.Wait() // each session's last order has given up: the budget is spent
	// One node back, without a quorum: every resend is refused for the
	// whole budget (NotLeader, no leader), which says nothing of the
	// attempt that was lost.
	if err := c.Start(c.Nodes[0]); err != nil {
		t.Fatal(err)
	}
	unknown := 0
	for i, r := range results {
		switch {
		case errors.Is(r.err, client.ErrUnknownOutcome):
			unknown++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.s.RetryLast(context.Background()); !errors.Is(err, client.ErrUnknownOutcome) {
					t.Errorf("customer %d: a resend refused by a node without a quorum reported the order failed: %v", i, err)
				}
			}()
		case errors.Is(r.err, client.ErrUnreachable):
			// Sent after the kill: it reached no node and was not applied.
		default:
			t.Fatalf("customer %d: an order in flight at the kill was reported failed: %v", i, r.err)
		}
	}
	wg.Wait()
	for _, n := range c.Nodes[1:] {
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range results {
		if !errors.Is(r.err, client.ErrUnknownOutcome) {
			continue
		}
		// Settle it: refusals while the cluster elects a leader say
		// nothing of the attempt that was lost either.
		deadline := time.Now().Add(60 * time.Second)
		for {
			li, err := r.s.RetryLast(context.Background())
			if err == nil {
				if li.CustomerID != int32(i) || li.OrderNumber != int32(r.acked+1) {
					t.Fatalf("customer %d: the resend answered %+v, want order %d", i, li, r.acked+1)
				}
				results[i].acked++
				break
			}
			if !errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("customer %d: a resend of an order whose outcome is unknown was reported failed: %v", i, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("customer %d: still unknown a minute after the restart: %v", i, err)
			}
		}
	}
	if unknown == 0 {
		t.Fatal("no order was in flight at the kill: the test proved nothing")
	}
	t.Logf("%d of %d sessions had an order in flight at the kill; all settled", unknown, sessions)
	check := mustClient(t, c.Addrs()...)
	for i, r := range results {
		if rec := mustGet(t, check, int32(i), wire.Linearizable); int64(rec.OrderCount) != r.acked {
			t.Errorf("customer %d: %d orders in the record, %d answered", i, rec.OrderCount, r.acked)
		}
	}
}

// TestOrderctlResendsWithClientID: `orderctl order --client-id` resends
// an earlier run's order (its seq 1): the second run gets the first
// answer, and the order is applied once.
func TestOrderctlResendsWithClientID(t *testing.T) {
	c := startCluster(t)
	var answers [2]struct {
		Index uint64 `json:"index"`
	}
	for i := range answers {
		out := mustOrderctl(t, c.Addrs(), "--json", "order", "--customer", "77", "--number", "5", "--client-id", "424242")
		if err := json.Unmarshal([]byte(out), &answers[i]); err != nil {
			t.Fatalf("orderctl order: %v\n%s", err, out)
		}
	}
	if answers[0].Index == 0 || answers[1] != answers[0] {
		t.Fatalf("answers %+v: want the resend to return the first index", answers)
	}
	out := mustOrderctl(t, c.Addrs(), "--json", "get", "--customer", "77")
	var rec struct {
		OrderCount uint64 `json:"order_count"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.OrderCount != 1 {
		t.Fatalf("record %s (%v): want one order", out, err)
	}
}
