package serve

import (
	"context"
	"net"
	"runtime"
	"testing"

	"orderly/internal/procio"
	"orderly/wire"
)

// BenchmarkConnPipelined is 64 callers sharing one connection to a server
// over loopback TCP, each waiting for its answer before the next call:
// the shape of 64 customers on one shared connection. It reports the
// write system calls per call (both ends, from /proc/self/io), which the
// writers' yield-before-flush keeps well under one.
func BenchmarkConnPipelined(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := Orderly(ln, func(_ context.Context, _ Caller, m wire.Message) wire.Message {
		g := m.(wire.Get)
		return wire.Record{CustomerRecord: wire.CustomerRecord{CustomerID: g.CustomerID}, ReadIndex: 1}
	}, Options{})
	defer srv.Close()
	c, err := wire.Dial(context.Background(), srv.Addr(), wire.DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	before := writeSyscalls()
	b.SetParallelism(64 / max(runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(context.Background(), wire.Get{CustomerID: 1, Consistency: wire.Stale}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if before >= 0 {
		b.ReportMetric(float64(writeSyscalls()-before)/float64(b.N), "writes/op")
	}
}

// writeSyscalls is this process's write system calls so far, or -1
// where /proc/self/io cannot say.
func writeSyscalls() int64 {
	if _, w, ok := procio.Syscalls(); ok {
		return w
	}
	return -1
}
