package chaos

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"orderly/wire"
)

// Verdict is one check's result.
type Verdict struct {
	Name   string   `json:"name"`
	Pass   bool     `json:"pass"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors,omitempty"` // the first few violations
}

// custState is the model's view of one customer.
type custState struct {
	Count uint64
	Last  int32
}

type modelInput struct {
	Order  bool
	Number int32
}

type modelOutput struct {
	Count   uint64
	Last    int32
	Unknown bool // an order whose outcome is unknown: it may apply at any time after its call
	// LastOnly: a read through the seed protocol, which answers the last
	// order and not the count.
	LastOnly bool
}

// customerModel is a customer record as a sequential object: an order
// adds one to the count and sets the last order; a read returns both.
// Histories are partitioned by customer.
var customerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int32][]porcupine.Operation{}
		var keys []int32
		for _, op := range history {
			c := op.Metadata.(int32)
			if _, ok := by[c]; !ok {
				keys = append(keys, c)
			}
			by[c] = append(by[c], op)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return custState{Last: wire.NoOrder} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(custState), input.(modelInput), output.(modelOutput)
		if in.Order {
			next := custState{Count: s.Count + 1, Last: in.Number}
			return out.Unknown || out.Count == next.Count, next
		}
		return (out.LastOnly || out.Count == s.Count) && out.Last == s.Last, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(modelInput), output.(modelOutput)
		if in.Order {
			if out.Unknown {
				return fmt.Sprintf("order %d -> ?", in.Number)
			}
			return fmt.Sprintf("order %d -> count %d", in.Number, out.Count)
		}
		if out.LastOnly {
			return fmt.Sprintf("seed read -> last %d", out.Last)
		}
		return fmt.Sprintf("read -> count %d, last %d", out.Count, out.Last)
	},
	DescribeState: func(state any) string {
		s := state.(custState)
		return fmt.Sprintf("count %d, last %d", s.Count, s.Last)
	},
	DescribeOperationMetadata: func(info any) string { return fmt.Sprintf("customer %d", info.(int32)) },
}

// linearizableOps turns the history into porcupine operations: acknowledged
// and unknown orders (an unknown one completes at infinity), and
// acknowledged linearizable reads. Failed operations did nothing.
func linearizableOps(ops []Op) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		if op.Outcome == Failed || (op.Kind == OpRead && op.Consistency != wire.Linearizable) {
			continue
		}
		p := porcupine.Operation{ClientId: op.Client, Call: int64(op.Call), Return: int64(op.Return), Metadata: op.Customer}
		if op.Kind == OpOrder {
			p.Input = modelInput{Order: true, Number: op.Number}
			p.Output = modelOutput{Count: op.Count, Last: op.Number, Unknown: op.Outcome == Unknown}
			if op.Outcome == Unknown {
				p.Return = math.MaxInt64 / 2
			}
		} else {
			p.Input = modelInput{}
			p.Output = modelOutput{Count: op.Count, Last: op.Last, LastOnly: op.Via == ViaSeed}
		}
		out = append(out, p)
	}
	return out
}

// checkLinearizable runs porcupine; on a violation (or a timeout) it
// writes the visualisation to htmlPath.
func checkLinearizable(ops []Op, timeout time.Duration, htmlPath string) Verdict {
	pops := linearizableOps(ops)
	res, info := porcupine.CheckOperationsVerbose(customerModel, pops, timeout)
	v := Verdict{Name: "linearizable (porcupine, per customer)", Pass: res == porcupine.Ok,
		Detail: fmt.Sprintf("%s over %d operations", res, len(pops))}
	if res != porcupine.Ok {
		if err := porcupine.VisualizePath(customerModel, info, htmlPath); err != nil {
			v.Errors = append(v.Errors, fmt.Sprintf("visualisation: %v", err))
		} else {
			v.Detail += "; see " + htmlPath
		}
	}
	return v
}

// checkCounts compares every customer's final order_count with the
// history: acknowledged orders must all be there (none lost), and nothing
// beyond acknowledged plus unknown ones (none applied twice).
func checkCounts(ops []Op, final map[int32]uint64, doubleApply []string) (lost, dup Verdict) {
	acked, unknown := map[int32]uint64{}, map[int32]uint64{}
	for _, op := range ops {
		if op.Kind != OpOrder {
			continue
		}
		switch op.Outcome {
		case OK:
			acked[op.Customer]++
		case Unknown:
			unknown[op.Customer]++
		}
	}
	lost = Verdict{Name: "acknowledged orders lost", Pass: true}
	dup = Verdict{Name: "orders applied twice", Pass: true}
	var nLost, nDup uint64
	for c, count := range final {
		if count < acked[c] {
			nLost += acked[c] - count
			lost.Errors = append(lost.Errors, fmt.Sprintf("customer %d: %d acknowledged, %d in the record", c, acked[c], count))
		}
		if count > acked[c]+unknown[c] {
			nDup += count - acked[c] - unknown[c]
			dup.Errors = append(dup.Errors, fmt.Sprintf("customer %d: %d in the record, but only %d acknowledged + %d unknown",
				c, count, acked[c], unknown[c]))
		}
	}
	dup.Errors = append(dup.Errors, doubleApply...)
	nDup += uint64(len(doubleApply))
	lost.Pass, dup.Pass = nLost == 0, nDup == 0
	lost.Detail = fmt.Sprintf("%d lost", nLost)
	dup.Detail = fmt.Sprintf("%d applied twice (%d resends answered with a new index)", nDup, len(doubleApply))
	lost.Errors, dup.Errors = firstFew(lost.Errors), firstFew(dup.Errors)
	return lost, dup
}

// checkSessions: a client's session read must see its own acknowledged
// writes and never go back behind anything the client has read before.
func checkSessions(ops []Op) Verdict {
	type key struct {
		client int
		cust   int32
	}
	floor := map[key]uint64{} // what this client knows the count has reached
	v := Verdict{Name: "session reads: read-your-writes and monotonic", Pass: true}
	sorted := append([]Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Return < sorted[j].Return })
	n := 0
	for _, op := range sorted {
		if op.Outcome != OK {
			continue
		}
		k := key{op.Client, op.Customer}
		if op.Kind == OpRead && op.Consistency == wire.Session {
			n++
			if op.Count < floor[k] {
				v.Pass = false
				v.Errors = append(v.Errors, fmt.Sprintf("client %d (%s) read customer %d with count %d after it had seen %d",
					op.Client, op.Via, op.Customer, op.Count, floor[k]))
			}
		}
		floor[k] = max(floor[k], op.Count)
	}
	v.Detail = fmt.Sprintf("%d session reads, %d violations", n, len(v.Errors))
	v.Errors = firstFew(v.Errors)
	return v
}

func firstFew(s []string) []string {
	if len(s) > 10 {
		return append(s[:10:10], fmt.Sprintf("... and %d more", len(s)-10))
	}
	return s
}
