package lb

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	oclient "orderly/client"
	"orderly/internal/testclient"
	"orderly/internal/testnet"
	"orderly/serve"
	"orderly/wire"
)

// TestBalancerKeepsAnUnknownOutcomeUnknown: a write the leader applied but
// whose answer was lost (the node drops the balancer's connection), then
// refused at every resend, is answered Timeout (outcome unknown) by the
// balancer's retry path, never with the refusal: NotLeader for the whole
// budget, or a final NoSpace. Through the client package, Order and then
// RetryLast say unknown until the node answers, and then return the first
// answer's index.
func TestBalancerKeepsAnUnknownOutcomeUnknown(t *testing.T) {
	const (
		dropIt int32 = iota
		refuseNotLeader
		refuseNoSpace
		answerIt
	)
	conns, err := testnet.Listen()
	if err != nil {
		t.Fatal(err)
	}
	var mode, afterDrop atomic.Int32 // what the node does now, and once it dropped an order
	node := serve.Orderly(conns, func(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
		switch r := req.(type) {
		case wire.Status:
			return wire.StatusInfo{ID: "n1", Role: "leader", LeaderID: "n1", Term: 1}
		case wire.Order:
			switch mode.Load() {
			case dropIt:
				mode.Store(afterDrop.Load())
				conns.DropAll()
			case refuseNotLeader:
				return wire.Errorf(wire.CodeNotLeader, "not the leader")
			case refuseNoSpace:
				return wire.Errorf(wire.CodeNoSpace, "disk full")
			}
			return wire.LaptopInfo{CustomerID: r.CustomerID, OrderNumber: r.OrderNumber, Index: 7}
		}
		return wire.Errorf(wire.CodeBadRequest, "not here")
	}, serve.Options{})
	defer node.Close()
	cfg := DefaultConfig()
	cfg.Listen, cfg.Backends, cfg.RetryTimeout = "127.0.0.1:0", []string{conns.Addr().String()}, 400*time.Millisecond
	cfg.LegacyListen = "127.0.0.1:0"
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitUntil(t, func() bool { return b.pool.currentLeader() != nil })

	raw, err := wire.Dial(context.Background(), b.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	o := wire.Order{CustomerID: 1, OrderNumber: 1, ClientID: 11, Seq: 1}
	for _, tc := range []struct {
		name  string
		after int32
	}{{"lost, then NotLeader for the whole budget", refuseNotLeader}, {"lost, then NoSpace", refuseNoSpace}} {
		afterDrop.Store(tc.after)
		mode.Store(dropIt)
		waitUntil(t, func() bool { return b.pool.currentLeader() != nil && b.pool.currentLeader().usable() != nil })
		_, err := raw.Order(context.Background(), o)
		if code(err) != wire.CodeTimeout {
			t.Fatalf("%s: the balancer answered %v, want Timeout (outcome unknown)", tc.name, err)
		}
	}

	afterDrop.Store(refuseNotLeader)
	mode.Store(dropIt)
	waitUntil(t, func() bool { return b.pool.currentLeader() != nil && b.pool.currentLeader().usable() != nil })
	_, s := testclient.Session(t, b.Addr(), 400*time.Millisecond)
	if _, err := s.Order(context.Background(), 1, 1, wire.Regular); !errors.Is(err, oclient.ErrUnknownOutcome) {
		t.Fatalf("Order through the balancer: %v, want ErrUnknownOutcome", err)
	}
	if _, err := s.RetryLast(context.Background()); !errors.Is(err, oclient.ErrUnknownOutcome) {
		t.Fatalf("RetryLast through the balancer, NotLeader for the whole budget: %v, want ErrUnknownOutcome", err)
	}
	mode.Store(answerIt)
	if li, err := s.RetryLast(context.Background()); err != nil || li.Index != 7 {
		t.Fatalf("RetryLast once the node answers: %+v, %v; want index 7", li, err)
	}

	// The seed's port: its client cannot resend with the same seq, so the
	// balancer settles the order itself, past its retry budget, and
	// answers what the node answers in the end, not the seed's -1.
	afterDrop.Store(refuseNotLeader)
	mode.Store(dropIt)
	waitUntil(t, func() bool { return b.pool.currentLeader() != nil && b.pool.currentLeader().usable() != nil })
	seed, err := net.Dial("tcp", b.LegacyAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	go func() { // NotLeader for three retry budgets, then the answer
		time.Sleep(3 * cfg.RetryTimeout)
		mode.Store(answerIt)
	}()
	if _, err := seed.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, legacyInfoLen)
	if _, err := io.ReadFull(seed, reply); err != nil {
		t.Fatalf("the seed port's answer: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(reply)); got != 1 {
		t.Fatalf("the seed port answered customer %d (%x), want the order's answer for customer 1", got, reply)
	}
}
