package validate

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"orderly/chaos/model"
	"orderly/wire"
)

// longHistory is a linearizable history shaped like a chaos run's: clients
// that run one operation at a time on random customers of few, half
// orders; each operation takes effect at a random point between its call
// and its return.
func longHistory(seed uint64, clients, customers, n int) []model.Op {
	rng := rand.New(rand.NewPCG(seed, 0))
	type effect struct {
		op model.Op
		at time.Duration
	}
	var all []effect
	clock := make([]time.Duration, clients)
	number := make([]int32, customers)
	for range n {
		c := rng.IntN(clients)
		call := clock[c] + time.Duration(rng.IntN(300))*time.Microsecond
		ret := call + time.Duration(100+rng.IntN(3000))*time.Microsecond
		clock[c] = ret
		op := model.Op{Client: c, Via: model.ViaNodes, Customer: int32(rng.IntN(customers)), Call: call, Return: ret, Outcome: model.OK}
		if rng.IntN(2) == 0 {
			op.Kind = model.OpOrder
			number[op.Customer]++
			op.Number = number[op.Customer]
		} else {
			op.Kind, op.Consistency = model.OpRead, wire.Linearizable
		}
		all = append(all, effect{op, call + time.Duration(rng.Int64N(int64(ret-call)))})
	}
	slices.SortStableFunc(all, func(a, b effect) int { return int(a.at - b.at) })
	count := make([]uint64, customers)
	last := make([]int32, customers)
	for i := range last {
		last[i] = wire.NoOrder
	}
	ops := make([]model.Op, len(all))
	for i, e := range all {
		op := e.op
		if op.Kind == model.OpOrder {
			count[op.Customer]++
			last[op.Customer] = op.Number
		}
		op.Count, op.Last = count[op.Customer], last[op.Customer]
		ops[i] = op
	}
	return ops
}

// TestLinearizableLongHistory: 400,000 operations of six clients on four
// customers, a whole history porcupine could not search in 24 GB at once,
// pass in segments; one answer changed in the middle fails it and names
// its customer.
func TestLinearizableLongHistory(t *testing.T) {
	ops := longHistory(1, 6, 4, 400_000)
	html := filepath.Join(t.TempDir(), "l.html")
	v := Linearizable(ops, 5*time.Minute, html)
	if !v.Pass {
		t.Fatalf("a linearizable history: %s %v", v.Detail, v.Errors)
	}
	t.Log(v.Detail)
	i := len(ops) / 2
	for ops[i].Kind != model.OpRead {
		i++
	}
	ops[i].Count++
	v = Linearizable(ops, 5*time.Minute, html)
	if v.Pass || len(v.Errors) == 0 {
		t.Fatalf("a read that saw one order too many passed: %s", v.Detail)
	}
	t.Log(v.Detail, v.Errors)
}

func BenchmarkLinearizable(b *testing.B) {
	ops := longHistory(1, 262, 260, 1_000_000)
	b.ResetTimer()
	for range b.N {
		if v := Linearizable(ops, 10*time.Minute, filepath.Join(b.TempDir(), "l.html")); !v.Pass {
			b.Fatal(v.Detail)
		}
	}
	b.ReportMetric(float64(len(ops))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// TestLinearizableRefusesAStretchWithoutACut: two orders of unknown
// outcome, one applied and one not, leave it open which one is still
// pending, so no read after them is a cut. A stretch longer than the
// checker takes in bounded memory fails the check as not checked, and
// says why.
func TestLinearizableRefusesAStretchWithoutACut(t *testing.T) {
	ops := longHistory(2, 2, 1, maxSegment+10_000)
	for i := range ops {
		ops[i].Call, ops[i].Return = ops[i].Call+time.Millisecond, ops[i].Return+time.Millisecond
		if ops[i].Outcome == model.OK {
			ops[i].Count++ // the first unknown order took effect before all of them
		}
	}
	unknown := func(n int32) model.Op {
		return model.Op{Client: 9, Kind: model.OpOrder, Customer: 0, Number: -n, Call: time.Duration(n), Outcome: model.Unknown}
	}
	ops = append(ops, unknown(1), unknown(2))
	v := Linearizable(ops, time.Minute, filepath.Join(t.TempDir(), "l.html"))
	if v.Pass || len(v.Errors) != 1 || !strings.Contains(v.Errors[0], "without a cut") {
		t.Fatalf("verdict %+v: want a failure naming the stretch without a cut", v)
	}
}
