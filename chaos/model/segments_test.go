package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/anishathalye/porcupine"

	"orderly/wire"
)

// randomHistory is one customer's history of clients that run one
// operation at a time: each takes effect at a random point between its
// call and its return, in that order, so the history is linearizable.
// Then, with corrupt, one answer is changed; some orders end unknown (and
// took effect or not): one in unknownOneIn (none if 0).
func randomHistory(rng *rand.Rand, clients, n, unknownOneIn int, corrupt bool) []porcupine.Operation {
	type pending struct {
		op    porcupine.Operation
		at    int64
		order bool
	}
	var all []pending
	clock := make([]int64, clients)
	number := int32(0)
	for range n {
		c := rng.IntN(clients)
		call := clock[c] + int64(rng.IntN(5))
		ret := call + 1 + int64(rng.IntN(8))
		clock[c] = ret + 1
		p := pending{op: porcupine.Operation{ClientId: c, Call: call, Return: ret, Metadata: int32(1)},
			at: call + rng.Int64N(ret-call+1), order: rng.IntN(2) == 0}
		if p.order {
			number++
			p.op.Input = modelInput{Order: true, Number: number}
		} else {
			p.op.Input = modelInput{}
		}
		all = append(all, p)
	}
	slices.SortStableFunc(all, func(a, b pending) int { return int(a.at - b.at) })
	st := custState{Last: wire.NoOrder}
	var out []porcupine.Operation
	for _, p := range all {
		if p.order {
			unknown := unknownOneIn > 0 && rng.IntN(unknownOneIn) == 0
			if !unknown || rng.IntN(2) == 0 {
				st = custState{Count: st.Count + 1, Last: p.op.Input.(modelInput).Number}
			}
			p.op.Output = modelOutput{Count: st.Count, Last: st.Last, Unknown: unknown}
			if unknown {
				p.op.Return = math.MaxInt64 / 2
			}
		} else {
			p.op.Output = modelOutput{Count: st.Count, Last: st.Last}
		}
		out = append(out, p.op)
	}
	if corrupt {
		i := rng.IntN(len(out))
		o := out[i].Output.(modelOutput)
		o.Count += uint64(1 + rng.IntN(2))
		o.Unknown = false
		out[i].Output = o
	}
	return out
}

func checkSegmented(ops []porcupine.Operation, size int) porcupine.CheckResult {
	for _, s := range Segments(ops, size) {
		if r := porcupine.CheckOperations(s.Model, s.Ops); !r {
			return porcupine.Illegal
		}
	}
	return porcupine.Ok
}

// TestSegmentsAgreeWithTheWholeHistory: on random histories, linearizable
// or with one answer changed, checking segment by segment (cut as often
// as possible) gives porcupine's verdict on the whole history.
func TestSegmentsAgreeWithTheWholeHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(20261207, 1))
	var illegal, cut int
	for i := range 3000 {
		ops := randomHistory(rng, 1+rng.IntN(3), 5+rng.IntN(40), 40, i%2 == 1)
		whole := porcupine.CheckOperationsTimeout(Customer, ops, 0)
		if got := checkSegmented(ops, 1); got != whole {
			t.Fatalf("history %d: segmented %v, whole %v:\n%+v\nsegments %d", i, got, whole, ops, len(Segments(ops, 1)))
		}
		if whole == porcupine.Illegal {
			illegal++
		}
		if len(Segments(ops, 1)) > 1 {
			cut++
		}
	}
	if illegal < 500 || cut < 1000 {
		t.Fatalf("%d illegal histories, %d cut: the test proves little", illegal, cut)
	}
}

// TestSegmentsCoverTheHistory: every operation is in one segment, in call
// order; segments hold at least size operations but the last; none is
// cut after an order of unknown outcome.
func TestSegmentsCoverTheHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ops := randomHistory(rng, 2, 20000, 0, false)
	// An order of unknown outcome in the middle: no cut after it.
	mid := len(ops) / 2
	for ; ops[mid].Input.(modelInput).Order == false; mid++ {
	}
	ops[mid].Return = math.MaxInt64 / 2
	o := ops[mid].Output.(modelOutput)
	o.Unknown = true
	ops[mid].Output = o
	segs := Segments(ops, 500)
	if len(segs) < 10 {
		t.Fatalf("%d segments of 20,000 operations: want cuts", len(segs))
	}
	var joined []porcupine.Operation
	pendingUnknown := false
	for i, s := range segs {
		if i < len(segs)-1 && len(s.Ops) < 500 {
			t.Fatalf("segment %d holds %d operations", i, len(s.Ops))
		}
		if pendingUnknown {
			t.Fatalf("segment %d starts after an order of unknown outcome", i)
		}
		for _, op := range s.Ops {
			pendingUnknown = pendingUnknown || op.Output.(modelOutput).Unknown
		}
		joined = append(joined, s.Ops...)
	}
	if len(joined) != len(ops) || !slices.IsSortedFunc(joined, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) }) {
		t.Fatalf("segments hold %d operations of %d, or out of call order", len(joined), len(ops))
	}
	if r := checkSegmented(ops, 500); r != porcupine.Ok {
		t.Fatalf("a linearizable history of 20,000 operations: %v", r)
	}
}
