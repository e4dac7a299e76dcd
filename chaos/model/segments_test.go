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
// One order in unknownOneIn (none if 0) ends unknown: it took effect at
// any later time, even after later operations of its client, or never.
// One read in six is the seed port's (the last order only). With corrupt,
// one answer is changed.
func randomHistory(rng *rand.Rand, clients, n, unknownOneIn int, corrupt bool) []porcupine.Operation {
	type effect struct {
		op porcupine.Operation
		at int64
	}
	var all []effect
	clock := make([]int64, clients)
	number := int32(0)
	for range n {
		c := rng.IntN(clients)
		call := clock[c] + int64(rng.IntN(5))
		ret := call + 1 + int64(rng.IntN(8))
		clock[c] = ret + 1
		e := effect{op: porcupine.Operation{ClientId: c, Call: call, Return: ret, Metadata: int32(1), Input: modelInput{}},
			at: call + rng.Int64N(ret-call+1)}
		if rng.IntN(2) == 0 {
			number++
			e.op.Input = modelInput{Order: true, Number: number}
			if unknownOneIn > 0 && rng.IntN(unknownOneIn) == 0 {
				e.op.Return = math.MaxInt64 / 2
				e.op.Output = modelOutput{Unknown: true}
				if rng.IntN(2) == 0 {
					continue // never took effect
				}
				e.at = call + rng.Int64N(int64(20*n))
			}
		} else if rng.IntN(6) == 0 {
			e.op.Output = modelOutput{LastOnly: true}
		}
		all = append(all, e)
	}
	slices.SortStableFunc(all, func(a, b effect) int { return int(a.at - b.at) })
	st := custState{Last: wire.NoOrder}
	var out []porcupine.Operation
	for _, e := range all {
		o, _ := e.op.Output.(modelOutput)
		if in := e.op.Input.(modelInput); in.Order {
			st = custState{Count: st.Count + 1, Last: in.Number}
		}
		if !o.Unknown {
			o.Count, o.Last = st.Count, st.Last
		}
		e.op.Output = o
		out = append(out, e.op)
	}
	if corrupt {
		i := rng.IntN(len(out))
		for out[i].Output.(modelOutput).Unknown {
			i = rng.IntN(len(out))
		}
		o := out[i].Output.(modelOutput)
		if rng.IntN(2) == 0 {
			o.Count += uint64(1 + rng.IntN(2))
		} else {
			o.Last += int32(1 + rng.IntN(2))
		}
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
	var illegal, cut, carried, settled int
	for i := range 4000 {
		ops := randomHistory(rng, 1+rng.IntN(3), 5+rng.IntN(40), 6, i%2 == 1)
		whole := porcupine.CheckOperationsTimeout(Customer, ops, 0)
		segs := Segments(ops, 1)
		if got := checkSegmented(ops, 1); got != whole {
			t.Fatalf("history %d: segmented %v, whole %v:\n%+v\nsegments %d", i, got, whole, ops, len(segs))
		}
		if whole == porcupine.Illegal {
			illegal++
		}
		if len(segs) > 1 {
			cut++
		}
		for k, s := range segs { // unknown orders placed before a cut, or carried past one
			for _, op := range s.Ops {
				if !op.Output.(modelOutput).Unknown {
					continue
				}
				if k < len(segs)-1 {
					settled++
				}
				if prev := k - 1; prev >= 0 && op.Call < segs[prev].Ops[len(segs[prev].Ops)-1].Call {
					carried++
				}
			}
		}
	}
	if illegal < 500 || cut < 1000 || settled < 100 || carried < 200 {
		t.Fatalf("%d illegal histories, %d cut, %d unknown orders settled before a cut, %d carried past one: the test proves little",
			illegal, cut, settled, carried)
	}
	t.Logf("%d illegal histories, %d cut, %d unknown orders settled before a cut, %d carried past one", illegal, cut, settled, carried)
}

// TestSegmentsCoverTheHistory: every operation is in one segment, in call
// order within it; segments hold at least size operations but the last;
// an order of unknown outcome that never took effect in the middle holds
// back no cut and is checked in the last segment.
func TestSegmentsCoverTheHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ops := randomHistory(rng, 2, 20000, 0, false)
	lost := porcupine.Operation{ClientId: 9, Call: ops[len(ops)/2].Call, Return: math.MaxInt64 / 2, Metadata: int32(1),
		Input: modelInput{Order: true, Number: 1 << 30}, Output: modelOutput{Unknown: true}}
	ops = append(ops, lost)
	segs := Segments(ops, 500)
	if len(segs) < 20 {
		t.Fatalf("%d segments of 20,000 operations: want cuts", len(segs))
	}
	seen := map[int64]int{}
	for i, s := range segs {
		if i < len(segs)-1 && len(s.Ops) < 500 {
			t.Fatalf("segment %d holds %d operations", i, len(s.Ops))
		}
		for _, op := range s.Ops {
			seen[op.Call<<8|int64(op.ClientId)]++
		}
	}
	for _, op := range ops {
		if seen[op.Call<<8|int64(op.ClientId)] != 1 {
			t.Fatalf("operation %+v is in %d segments", op, seen[op.Call<<8|int64(op.ClientId)])
		}
	}
	if last := segs[len(segs)-1].Ops; !slices.ContainsFunc(last, func(op porcupine.Operation) bool { return op.ClientId == 9 }) {
		t.Fatal("the unknown order is not in the last segment")
	}
	if r := checkSegmented(ops, 500); r != porcupine.Ok {
		t.Fatalf("a linearizable history of 20,000 operations: %v", r)
	}
}
