package model

import (
	"math"
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
// A cut falls right after a read R of the whole record (not the seed
// port's) that no operation of known outcome overlaps: every one called
// before R returned before R was called, and the next is called after R
// returned. Any linearization puts R between them, so the state at the
// cut is the one R saw. Orders of unknown outcome called before R (they
// return at infinity) may fall on either side of R; R's count says how
// many fell before it: the count at the segment's start plus its
// acknowledged orders plus that many. If none did, they move on to the
// next segment (still pending from their call); if all did, they stay in
// this one; any other number leaves it open which did, and R is no cut.
// The history is linearizable if and only if every segment is, each from
// the state its cut gives.
//
// A segment holds at least size operations where the cuts allow; one
// without a cut for longer is as long as it must be.
func Segments(ops []porcupine.Operation, size int) []Segment {
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	s := segmenter{from: Customer, lastReturn: math.MinInt64}
	for i, op := range sorted {
		st, full := stateSeen(op)
		if full && len(s.cur)+1 >= size && i+1 < len(sorted) && s.lastReturn < op.Call && op.Return < sorted[i+1].Call &&
			s.cut(op, st) {
			continue
		}
		s.cur = append(s.cur, op)
		switch in, o := op.Input.(modelInput), op.Output.(modelOutput); {
		case in.Order && o.Unknown:
			s.unknown = append(s.unknown, op)
			continue // returns at infinity: it holds back no cut
		case in.Order:
			s.acked++
		}
		s.lastReturn = max(s.lastReturn, op.Return)
	}
	if len(s.cur)+len(s.carried) > 0 {
		s.out = append(s.out, Segment{Model: s.from, Ops: append(s.carried, s.cur...)})
	}
	return s.out
}

// segmenter is Segments' state.
type segmenter struct {
	out        []Segment
	from       porcupine.Model
	cur        []porcupine.Operation // the segment's operations so far
	base       uint64                // the count at the segment's start
	acked      uint64                // the segment's acknowledged orders
	carried    []porcupine.Operation // unknown orders pending from earlier segments
	unknown    []porcupine.Operation // the segment's own unknown orders
	lastReturn int64                 // the latest return of an operation of known outcome
}

// cut ends the segment with the read r, which saw st and which no
// operation of known outcome overlaps, unless it is open which pending
// orders of unknown outcome fell before r.
func (s *segmenter) cut(r porcupine.Operation, st custState) bool {
	if st.Count < s.base+s.acked {
		return false
	}
	var seg []porcupine.Operation
	switch pending := len(s.carried) + len(s.unknown); st.Count - s.base - s.acked {
	case 0: // all of them fall after r: on to the next segment
		for _, op := range s.cur {
			if o := op.Output.(modelOutput); !o.Unknown {
				seg = append(seg, op)
			}
		}
		s.carried = append(s.carried, s.unknown...)
	case uint64(pending): // all of them fall before r
		seg = append(s.carried, s.cur...)
		s.carried = nil
	default:
		return false
	}
	s.out = append(s.out, Segment{Model: s.from, Ops: append(seg, r)})
	s.from, s.cur, s.base, s.acked, s.unknown, s.lastReturn = CustomerFrom(st), nil, st.Count, 0, nil, r.Return
	return true
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
