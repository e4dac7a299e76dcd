package client

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/serve"
	"orderly/shard"
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
	var servers [2]*serve.Server
	for i := range servers {
		other := addrs[1-i]
		servers[i] = serve.Orderly(lns[i], func(context.Context, serve.Caller, wire.Message) wire.Message {
			return &wire.Error{Code: wire.CodeNotLeader, Message: "not the leader", LeaderAddr: other}
		}, serve.Options{})
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

// TestConcurrentFirstCallsShareOneConnection: calls that all find no
// connection dial at once; the losers of that race must not close the
// winner's connection under the calls already on it (each would come back
// as an unknown outcome and be retried).
func TestConcurrentFirstCallsShareOneConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve.Orderly(ln, func(_ context.Context, _ serve.Caller, m wire.Message) wire.Message {
		time.Sleep(20 * time.Millisecond) // keep every call in flight while the others dial
		if a, ok := oneShard(m); ok {
			return a
		}
		o := m.(wire.Order)
		return wire.LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, Index: 1}
	}, serve.Options{})
	defer srv.Close()
	c := clientOf(t, ln.Addr().String())
	const calls = 32
	errs := make(chan error, calls)
	for i := range calls {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := s.Order(context.Background(), int32(i), 1, wire.Regular)
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("order: %v", err)
		}
	}
	if n := c.Stats.Retries.Load(); n != 0 {
		t.Fatalf("%d retries: concurrent dials broke each other's calls", n)
	}
}

// A session the cluster forgot (SessionExpired on a write after the first)
// gets a new client id; the write, sure not to have been applied, is sent
// again as the new session's first.
func TestSessionRenewsAfterSessionExpired(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	known := map[uint64]uint64{} // client -> last seq
	var seen []wire.Order
	srv := serve.Orderly(ln, func(_ context.Context, _ serve.Caller, m wire.Message) wire.Message {
		if a, ok := oneShard(m); ok {
			return a
		}
		o := m.(wire.Order)
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, o)
		if _, ok := known[o.ClientID]; !ok && o.Seq > 1 {
			return wire.Errorf(wire.CodeSessionExpired, "no session")
		}
		known[o.ClientID] = o.Seq
		return wire.LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, Index: uint64(len(seen))}
	}, serve.Options{})
	defer srv.Close()
	s := sessionOf(t, srv.Addr(), time.Second)
	ctx := context.Background()
	if _, err := s.Order(ctx, 1, 1, wire.Regular); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	known = map[uint64]uint64{} // the cluster forgets every session
	mu.Unlock()
	if _, err := s.Order(ctx, 1, 2, wire.Regular); err != nil {
		t.Fatalf("the write after the session was forgotten: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[2].Seq != 1 || seen[2].ClientID == seen[0].ClientID || seen[2].OrderNumber != 2 {
		t.Fatalf("orders seen: %+v; want the second write resent as seq 1 of a new client", seen)
	}
}

// Calls that start together on a fresh client share one dial: 64
// customers on one client make one connection (and one TLS handshake),
// not 64.
func TestConcurrentCallsShareOneDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	srv := serve.Orderly(counted, func(context.Context, serve.Caller, wire.Message) wire.Message {
		return wire.StatusInfo{ID: "n1", Role: "leader", Term: 1}
	}, serve.Options{})
	defer srv.Close()
	c := clientOf(t, ln.Addr().String())
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Status(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := counted.accepted.Load(); n != 1 {
		t.Fatalf("64 concurrent first calls opened %d connections, want 1", n)
	}
}

type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// clientOf is a client of addr, closed at the end of the test.
func clientOf(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := New(Options{Addrs: []string{addr}, RetryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// oneShard answers the client's first question, the shard map, as a
// cluster of one shard.
func oneShard(m wire.Message) (wire.Message, bool) {
	if m.Type() != wire.TypeShards {
		return nil, false
	}
	return wire.ShardMap{Shards: []wire.ShardInfo{{SlotHi: shard.Slots}}}, true
}
