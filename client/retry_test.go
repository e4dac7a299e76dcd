package client

import (
	"context"
	"net"
	"testing"
	"time"

	"orderly/wire"
)

// TestRedirectLoopBacksOff: two nodes that name each other as the leader
// (as during an election) must not be hammered in a tight loop.
func TestRedirectLoopBacksOff(t *testing.T) {
	var addrs [2]string
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	var servers [2]*wire.Server
	for i := range servers {
		other := addrs[1-i]
		servers[i] = wire.Serve(lns[i], func(context.Context, int32, wire.Message) wire.Message {
			return &wire.Error{Code: wire.CodeNotLeader, Message: "not the leader", LeaderAddr: other}
		}, wire.ServerOptions{})
		defer servers[i].Close()
	}
	c, err := New(Options{Addrs: addrs[:], RetryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Order(context.Background(), 1, 1, wire.Regular)
	if code, ok := wire.CodeOf(err); !ok || code != wire.CodeNotLeader {
		t.Fatalf("order against nodes that only redirect: %v, want NotLeader after the deadline", err)
	}
	// With backoff from 5ms doubling to 200ms, one second allows a handful
	// of attempts; a tight loop would make thousands.
	if n := c.Stats.Redirects.Load(); n > 20 {
		t.Fatalf("%d redirects in one second: the client bounced without backing off", n)
	}
}
