package model

import (
	"sort"

	"github.com/anishathalye/porcupine"
)

// A Segment is a stretch of one customer's history that is checked on its
// own: Model starts from the state the stretch begins in.
type Segment struct {
	Model porcupine.Model
	Ops   []porcupine.Operation
}

// Segments splits one customer's operations so that porcupine checks a
// long history in bounded memory. Its search keeps, for every state it
// reaches, a bitset over all the operations it was given: memory grows
// with the square of their number (a customer's 500,000 operations in a
// 30-minute run would take 31 GB).
//
// A cut falls right after a read of the whole record (not the seed
// port's) that no other operation overlaps while no order of unknown
// outcome is pending (such an order returns at infinity, so it overlaps
// every later read). Every operation before the read returned before it
// was called and every one after it is called after it returned, so any
// linearization puts the read between them, and the state at the cut is
// the one the read saw. The history is linearizable if and only if every
// segment is, each from the state its cut gives.
//
// A segment holds at least size operations where the cuts allow; one
// without a cut for longer is as long as it must be.
func Segments(ops []porcupine.Operation, size int) []Segment {
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	var out []Segment
	from, start := Customer, 0
	var lastReturn int64 // the latest return of the operations before i
	for i, op := range sorted {
		if i-start+1 >= size && i+1 < len(sorted) && (i == 0 || lastReturn < op.Call) && op.Return < sorted[i+1].Call {
			if st, ok := stateSeen(op); ok {
				out = append(out, Segment{Model: from, Ops: sorted[start : i+1]})
				from, start = CustomerFrom(st), i+1
			}
		}
		lastReturn = max(lastReturn, op.Return)
	}
	if start < len(sorted) {
		out = append(out, Segment{Model: from, Ops: sorted[start:]})
	}
	return out
}

// stateSeen is the record a read of the whole record saw.
func stateSeen(op porcupine.Operation) (custState, bool) {
	in, out := op.Input.(modelInput), op.Output.(modelOutput)
	if in.Order || out.LastOnly {
		return custState{}, false
	}
	return custState{Count: out.Count, Last: out.Last}, true
}

// CustomerFrom is Customer starting from st.
func CustomerFrom(st custState) porcupine.Model {
	m := Customer
	m.Init = func() any { return st }
	return m
}
