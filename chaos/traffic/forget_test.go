package traffic

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"orderly/chaos/model"
	"orderly/chaos/validate"
	"orderly/internal/testclient"
	"orderly/internal/testnet"
	"orderly/serve"
	"orderly/wire"
)

// TestCheckerCatchesAForgottenUnknownOutcome is the checker's own test for
// the seed-20261207 failure: an order is applied but its answer lost, and
// the cluster refuses every resend (NotLeader) for longer than the
// client's budget before it answers. A client that forgets the lost
// attempt (ForgetUnknown) reports the order failed, and the checker must
// say "reported failed, yet applied" (not "applied twice"). The workload
// as it is waits for the answer, and every check passes.
func TestCheckerCatchesAForgottenUnknownOutcome(t *testing.T) {
	for _, forget := range []bool{true, false} {
		ops, final := placeOneLostOrder(t, forget)
		lost, failedApplied, dup := validate.Counts(ops, final, nil, nil)
		if !lost.Pass || !dup.Pass {
			t.Fatalf("forget %v: lost %v (%v), applied twice %v (%v): the order was applied once", forget, lost.Pass, lost.Errors, dup.Pass, dup.Errors)
		}
		if failedApplied.Pass == forget {
			t.Fatalf("forget %v: reported failed, yet applied: pass %v (%s %v)", forget, failedApplied.Pass, failedApplied.Detail, failedApplied.Errors)
		}
		if lin := validate.Linearizable(ops, time.Minute, t.TempDir()+"/l.html"); lin.Pass == forget {
			t.Fatalf("forget %v: linearizable: pass %v (%s)", forget, lin.Pass, lin.Detail)
		}
	}
}

// placeOneLostOrder runs one order of customer 1 through the workload
// against a node that applies it, drops the connection, refuses resends
// for a second and then answers them; then a read of the customer. It
// returns the history and the final count.
func placeOneLostOrder(t *testing.T, forget bool) ([]model.Op, map[int32]uint64) {
	t.Helper()
	const (
		dropIt int32 = iota
		refuse
		answer
	)
	conns, err := testnet.Listen()
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Int32
	node := serve.Orderly(conns, func(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
		switch r := req.(type) {
		case wire.Order:
			switch mode.Load() {
			case dropIt:
				mode.Store(refuse)
				time.AfterFunc(time.Second, func() { mode.Store(answer) })
				conns.DropAll()
			case refuse:
				return wire.Errorf(wire.CodeNotLeader, "node n1 is not the leader")
			}
			return wire.LaptopInfo{CustomerID: r.CustomerID, OrderNumber: r.OrderNumber, OrderCount: 1, Index: 7}
		case wire.Get:
			return wire.Record{CustomerRecord: wire.CustomerRecord{CustomerID: r.CustomerID, LastOrder: 1, OrderCount: 1}, ReadIndex: 7}
		}
		return wire.Errorf(wire.CodeBadRequest, "not here")
	}, serve.Options{})
	defer node.Close()

	w := New(Config{Clients: 1, Customers: 2, Load: LoadNormal, Duration: time.Minute, Start: time.Now(),
		Timeout: 200 * time.Millisecond, ForgetUnknown: forget})
	c, s := testclient.Session(t, conns.Addr().String(), w.timeout)
	rng := rand.New(rand.NewPCG(1, 1))
	w.order(context.Background(), s, rng, model.Op{Client: 0, Via: model.ViaNodes, Customer: 1}, true)
	time.Sleep(time.Until(w.start.Add(1200 * time.Millisecond))) // the node answers now
	w.read(context.Background(), c, model.Op{Client: 1, Via: model.ViaNodes, Customer: 1}, wire.Linearizable)
	return w.Ops(), map[int32]uint64{1: 1}
}
