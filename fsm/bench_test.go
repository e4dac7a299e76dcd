package fsm

import (
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
