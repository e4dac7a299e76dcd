package wire

import (
	"bytes"
	"testing"
)

// BenchmarkOrderRoundTrip encodes an Order frame and reads and decodes it,
// as a node does for every write it receives.
func BenchmarkOrderRoundTrip(b *testing.B) {
	o := Order{CustomerID: 7, OrderNumber: 12, LaptopType: Custom, ClientID: 99, Seq: 12}
	var buf []byte
	var r bytes.Reader
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		buf = AppendFrame(buf[:0], uint64(n), o)
		r.Reset(buf)
		f, err := NewFrameReader(&r, 0).ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(f.Type, f.Payload); err != nil {
			b.Fatal(err)
		}
	}
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
