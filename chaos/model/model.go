// Package model is what a chaos run records and what it is checked
// against: the operations of the history (Op) and a customer record as a
// sequential object for porcupine (Customer), with histories partitioned
// by customer.
package model

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"orderly/wire"
)

// OpKind is what an operation did.
type OpKind string

const (
	OpOrder OpKind = "order"
	OpRead  OpKind = "read"
)

// Outcome is how an operation ended, as Jepsen records it.
type Outcome string

const (
	OK      Outcome = "ok"      // answered
	Failed  Outcome = "fail"    // surely not applied
	Unknown Outcome = "unknown" // may or may not have been applied
)

// Op is one operation of the workload, with its invoke and completion
// times since the start of the run.
type Op struct {
	Client      int              `json:"client"`
	Via         string           `json:"via"` // balancer or nodes
	Kind        OpKind           `json:"kind"`
	Consistency wire.Consistency `json:"consistency,omitempty"`
	Customer    int32            `json:"customer"`
	Number      int32            `json:"number,omitempty"` // the order number placed
	Call        time.Duration    `json:"call_ns"`
	Return      time.Duration    `json:"return_ns"`
	Outcome     Outcome          `json:"outcome"`
	// Count and Last: for an order, the order_count after it; for a read,
	// the record read.
	Count uint64 `json:"count"`
	Last  int32  `json:"last"`
	Index uint64 `json:"index"`
	Err   string `json:"err,omitempty"`
}

// How a client reaches the cluster (Op.Via).
const (
	ViaBalancer = "balancer" // orderly protocol to orderlb
	ViaNodes    = "nodes"    // orderly protocol straight to the nodes
	ViaSeed     = "seed"     // the seed's protocol to orderlb's legacy port
)

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

// Customer is a customer record as a sequential object: an order
// adds one to the count and sets the last order; a read returns both.
// Histories are partitioned by customer.
var Customer = porcupine.Model{
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

// LinearizableOps turns the history into porcupine operations: acknowledged
// and unknown orders (an unknown one completes at infinity), and
// acknowledged linearizable reads. Failed operations did nothing.
func LinearizableOps(ops []Op) []porcupine.Operation {
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
