package serve

import (
	"context"
	"net"
	"testing"
	"time"

	"orderly/wire"
)

// Requests read in the same slot share one context; its deadline is the
// request timeout after the slot's start, at most one slot late.
func TestDeadlineSlots(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	if got := (&deadlineSlots{parent: parent}).get(); got != parent {
		t.Fatal("without a timeout the connection's context is not passed through")
	}
	d := &deadlineSlots{parent: parent, timeout: time.Second}
	before := time.Now()
	a, b := d.get(), d.get()
	if a != b {
		t.Fatal("two requests read at once got two contexts")
	}
	dl, ok := a.Deadline()
	if !ok || dl.Before(before.Add(time.Second)) || dl.After(time.Now().Add(time.Second+deadlineSlot)) {
		t.Fatalf("deadline %v (ok %v), want between %v and one slot more", dl, ok, before.Add(time.Second))
	}
	d.end = time.Now() // the slot is over
	if c := d.get(); c == a {
		t.Fatal("a request after the slot reused its context")
	}
	cancel()
	if a.Err() == nil {
		t.Fatal("closing the connection did not end its requests")
	}
}

// A server with a RequestTimeout hands its handler a context that ends.
func TestServerRequestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Orderly(ln, func(ctx context.Context, _ Caller, _ wire.Message) wire.Message {
		<-ctx.Done() // a request that would wait forever
		return wire.Errorf(wire.CodeTimeout, "%v", ctx.Err())
	}, Options{RequestTimeout: 50 * time.Millisecond})
	defer srv.Close()
	c, err := wire.Dial(context.Background(), srv.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Get(ctx, wire.Get{CustomerID: 1, Consistency: wire.Linearizable})
	if code, ok := wire.CodeOf(err); !ok || code != wire.CodeTimeout {
		t.Fatalf("answer %v, want the handler's Timeout", err)
	}
}
