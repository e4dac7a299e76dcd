package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"orderly/internal/testnet"
	"orderly/serve"
	"orderly/wire"
)

// What the test server does with an order.
const (
	dropIt          int32 = iota // apply it, then drop the connection unanswered
	refuseNotLeader              // NotLeader, no leader known
	refuseExpired                // SessionExpired
	answerIt                     // the answer of the write applied in dropIt
)

// TestSessionRemembersUnknownOutcome: the seed-20261207 chaos failure. A
// write is applied but its answer is lost; every resend is then refused
// (NotLeader for the whole budget, SessionExpired). Each refusal is sure
// only for the resend that got it: Order and RetryLast must both say
// unknown, never failed, and once the server answers, RetryLast returns
// the first answer's index. A new seq starts sure again.
func TestSessionRemembersUnknownOutcome(t *testing.T) {
	conns, err := testnet.Listen()
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Int32
	var applied atomic.Uint64 // the index the dropped write was applied at
	srv := serve.Orderly(conns, func(_ context.Context, _ serve.Caller, m wire.Message) wire.Message {
		if a, ok := oneShard(m); ok {
			return a
		}
		o := m.(wire.Order)
		switch mode.Load() {
		case dropIt:
			applied.Store(7)
			mode.Store(refuseNotLeader)
			conns.DropAll()
			return wire.LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, Index: 7}
		case refuseNotLeader:
			return wire.Errorf(wire.CodeNotLeader, "not the leader")
		case refuseExpired:
			return wire.Errorf(wire.CodeSessionExpired, "no session")
		}
		return wire.LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, Index: applied.Load()}
	}, serve.Options{})
	defer srv.Close()
	s := sessionOf(t, srv.Addr(), 300*time.Millisecond)
	ctx := context.Background()

	_, err = s.Order(ctx, 1, 1, wire.Regular)
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Order: lost, then NotLeader to the end: %v, want ErrUnknownOutcome", err)
	}
	_, err = s.RetryLast(ctx)
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("RetryLast answered NotLeader for the whole budget: %v, want ErrUnknownOutcome (the first attempt may have been applied)", err)
	}
	if code, _ := wire.CodeOf(err); code != wire.CodeNotLeader {
		t.Fatalf("RetryLast's error %v does not wrap the last attempt's NotLeader", err)
	}
	mode.Store(refuseExpired)
	if _, err = s.RetryLast(ctx); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("RetryLast answered SessionExpired: %v, want ErrUnknownOutcome", err)
	}
	mode.Store(answerIt)
	li, err := s.RetryLast(ctx)
	if err != nil || li.Index != 7 {
		t.Fatalf("RetryLast once the server answers: %+v, %v; want the first answer's index 7", li, err)
	}
	mode.Store(refuseNotLeader)
	_, err = s.Order(ctx, 1, 2, wire.Regular)
	if err == nil || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("a new write refused at every attempt: %v, want a sure NotLeader", err)
	}
	if _, err = s.RetryLast(ctx); err == nil || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("its resend refused again: %v, want a sure NotLeader", err)
	}
}

// sessionOf is a session of a client of addr with the retry budget given,
// closed at the end of the test.
func sessionOf(t *testing.T, addr string, budget time.Duration) *Session {
	t.Helper()
	c, err := New(Options{Addrs: []string{addr}, RetryTimeout: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
