package chaos

import (
	"sync"
	"time"

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

// history collects operations from concurrent clients.
type history struct {
	mu  sync.Mutex
	ops []Op
}

func (h *history) add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *history) all() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}
