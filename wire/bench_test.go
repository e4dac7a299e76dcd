package wire

import (
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
