package wire

import (
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// repeat is an endless stream of the same bytes.
type repeat struct {
	b   []byte
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// BenchmarkOrderRoundTrip encodes an Order frame, then reads and decodes
// one from a connection's frame reader, as a node does for every write.
func BenchmarkOrderRoundTrip(b *testing.B) {
	o := Order{CustomerID: 7, OrderNumber: 12, LaptopType: Custom, ClientID: 99, Seq: 12}
	fr := NewFrameReader(&repeat{b: AppendFrame(nil, 1, o)}, 0)
	var buf []byte
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		buf = AppendFrame(buf[:0], uint64(n), o)
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(f.Type, f.Payload); err != nil {
			b.Fatal(err)
		}
	}
	_ = buf
}

// BenchmarkLaptopInfoEncode is the reply to every order.
func BenchmarkLaptopInfoEncode(b *testing.B) {
	li := LaptopInfo{CustomerID: 7, OrderNumber: 12, LaptopType: Custom, EngineerID: 3, ExpertID: 1, Index: 123456, OrderCount: 12}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		buf = AppendFrame(buf[:0], uint64(n), li)
	}
}

// BenchmarkRecordDecode is the answer to every read, on the client side.
func BenchmarkRecordDecode(b *testing.B) {
	p := Record{CustomerRecord: CustomerRecord{CustomerID: 1, LastOrder: 2, OrderCount: 3, LastLaptopType: 1, LastIndex: 4}, ReadIndex: 5}.AppendTo(nil)
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		if _, err := DecodeRecord(p); err != nil {
			b.Fatal(err)
		}
	}
}

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
	srv := Serve(ln, func(_ context.Context, _ int32, m Message) Message {
		g := m.(Get)
		return Record{CustomerRecord: CustomerRecord{CustomerID: g.CustomerID}, ReadIndex: 1}
	}, ServerOptions{})
	defer srv.Close()
	c, err := Dial(context.Background(), srv.Addr(), DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	before := writeSyscalls()
	b.SetParallelism(64 / max(runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(context.Background(), Get{CustomerID: 1, Consistency: Stale}); err != nil {
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

// writeSyscalls is this process's write system calls so far, or -1 where
// /proc/self/io cannot say.
func writeSyscalls() int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
