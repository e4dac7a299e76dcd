package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkApplyBatch applies batches of 64 orders, as raft hands them to
// a BatchingFSM under load: 256 clients on 1024 customers.
func BenchmarkApplyBatch(b *testing.B) {
	f := New(Options{})
	const batch = 64
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Type: raft.LogCommand}
	}
	seq := make([]uint64, 256)
	idx := uint64(0)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range logs {
			idx++
			c := int(idx % 256)
			seq[c]++
			logs[i].Index = idx
			logs[i].Data = AppendPlaceOrder(logs[i].Data[:0], PlaceOrder{CustomerID: int32(idx % 1024), OrderNumber: int32(seq[c]),
				ClientID: uint64(c + 1), Seq: seq[c], LeaderTime: now})
		}
		f.ApplyBatch(logs)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkNewCustomers applies orders of new customers, 200,000 of them
// in ascending, descending or random id order, one client: where a
// customer's record goes in the ordered index is what differs.
func BenchmarkNewCustomers(b *testing.B) {
	const n = 200_000
	orders := map[string]func(i int) int32{
		"ascending":  func(i int) int32 { return int32(i) },
		"descending": func(i int) int32 { return int32(n - i) },
		"random":     func(i int) int32 { return int32((uint64(i) * 2654435761) % (1 << 31)) },
	}
	for _, name := range []string{"ascending", "descending", "random"} {
		id := orders[name]
		b.Run(name, func(b *testing.B) {
			now := time.Now().UnixNano()
			l := &raft.Log{Type: raft.LogCommand}
			for range b.N {
				f := New(Options{})
				for i := range n {
					l.Index = uint64(i + 1)
					l.Data = AppendPlaceOrder(l.Data[:0], PlaceOrder{CustomerID: id(i), OrderNumber: 1,
						ClientID: 1, Seq: uint64(i + 1), LeaderTime: now})
					if o := ResultOf(f.Apply(l)).Outcome(0); o.Refused != 0 {
						b.Fatalf("order %d refused: %v", i, o.Refused)
					}
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

// BenchmarkSnapshotMillion is the state of 1,000,000 customers placed in
// random id order (issue 15 item 5): "take" is FSM.Snapshot, the part
// that holds the FSM (raft calls it on the FSM's goroutine, so no order
// is applied meanwhile); "persist" writes it out (to memory here, off the
// FSM's goroutine in raft); "restore" reads it back into a new FSM.
func BenchmarkSnapshotMillion(b *testing.B) {
	const n = 1_000_000
	f := New(Options{})
	now := time.Now().UnixNano()
	l := &raft.Log{Type: raft.LogCommand}
	for i := range n {
		l.Index = uint64(i + 1)
		id := int32((uint64(i+1) * 2654435761) % (1 << 31))
		l.Data = AppendPlaceOrder(l.Data[:0], PlaceOrder{CustomerID: id, OrderNumber: 1, ClientID: 1, Seq: uint64(i + 1), LeaderTime: now})
		if o := ResultOf(f.Apply(l)).Outcome(0); o.Refused != 0 {
			b.Fatalf("order %d refused: %v", i, o.Refused)
		}
	}
	var image bytes.Buffer
	b.Run("take", func(b *testing.B) {
		for range b.N {
			if _, err := f.Snapshot(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("persist", func(b *testing.B) {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			image.Reset()
			if err := snap.(*snapshot).writeTo(&image); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(image.Len())/(1<<20), "MiB")
	})
	b.Run("restore", func(b *testing.B) {
		for range b.N {
			g := New(Options{})
			if err := g.Restore(io.NopCloser(bytes.NewReader(image.Bytes()))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
