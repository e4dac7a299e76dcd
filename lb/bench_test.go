package lb

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"orderly/internal/procio"
	"orderly/serve"
	"orderly/wire"
)

// BenchmarkBalancerOrders is the balancer's own cost per write: 256
// customers over 16 connections (make bench's "writes c=256 via
// balancer") send orders through a balancer to a fake leader that answers
// at once, all over loopback TCP in this process. ns/op and allocs/op are
// the whole process's (client, balancer, node), so compare runs, not
// systems; syscalls/op counts reads and writes of every socket.
// c=1 is one customer's round trip through the balancer, and direct the
// same without it: their difference is the hop's latency.
func BenchmarkBalancerOrders(b *testing.B) {
	node, bal := benchBalancer(b)
	b.Run("c=256", func(b *testing.B) { benchOrders(b, bal.Addr(), 256, 16) })
	b.Run("c=1", func(b *testing.B) { benchOrders(b, bal.Addr(), 1, 1) })
	b.Run("c=1-direct", func(b *testing.B) { benchOrders(b, node, 1, 1) })
}

// benchBalancer starts a fake leader that answers orders at once and a
// balancer in front of it.
func benchBalancer(b *testing.B) (node string, bal *Balancer) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var index atomic.Uint64
	srv := serve.Orderly(ln, func(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
		switch r := req.(type) {
		case wire.Status:
			return wire.StatusInfo{ID: "n1", Role: "leader", Term: 1}
		case wire.Order:
			return wire.LaptopInfo{CustomerID: r.CustomerID, OrderNumber: r.OrderNumber, EngineerID: 1, ExpertID: -1,
				Index: index.Add(1), OrderCount: uint64(r.OrderNumber)}
		}
		return wire.Errorf(wire.CodeBadRequest, "not here")
	}, serve.Options{})
	b.Cleanup(srv.Close)

	cfg := DefaultConfig()
	cfg.Listen, cfg.Backends, cfg.CacheSize, cfg.LinearizableCache = "127.0.0.1:0", []string{ln.Addr().String()}, 10000, false
	bal, err = Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bal.Close)
	for start := time.Now(); bal.pool.currentLeader() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			b.Fatal("the balancer never saw the node lead")
		}
	}
	return ln.Addr().String(), bal
}

// benchOrders sends orders to addr from customers sharing conns
// connections, each with one order in flight.
func benchOrders(b *testing.B, addr string, customers, conns int) {
	cs := make([]*wire.Conn, conns)
	for i := range cs {
		var err error
		if cs[i], err = wire.Dial(context.Background(), addr, wire.DialOptions{}); err != nil {
			b.Fatal(err)
		}
		defer cs[i].Close()
	}
	var next atomic.Int32
	before := syscalls()
	customer := func(more func() bool) {
		id := next.Add(1)
		c := cs[int(id)%conns]
		o := wire.Order{CustomerID: id, ClientID: uint64(id), LaptopType: wire.Regular}
		for more() {
			o.OrderNumber++
			o.Seq++
			if _, err := c.Order(context.Background(), o); err != nil {
				b.Error(err)
				return
			}
		}
	}
	b.ResetTimer()
	if customers == 1 {
		i := 0
		customer(func() bool { i++; return i <= b.N })
	} else {
		b.SetParallelism(max(customers/runtime.GOMAXPROCS(0), 1))
		b.RunParallel(func(pb *testing.PB) { customer(pb.Next) })
	}
	b.StopTimer()
	if before >= 0 {
		b.ReportMetric(float64(syscalls()-before)/float64(b.N), "syscalls/op")
	}
}

// syscalls is this process's read and write system calls so far, or -1
// where /proc/self/io cannot say.
func syscalls() int64 {
	r, w, ok := procio.Syscalls()
	if !ok {
		return -1
	}
	return r + w
}
