package traffic

import (
	"sync"

	"orderly/chaos/model"
)

// history collects operations from concurrent clients.
type history struct {
	mu  sync.Mutex
	ops []model.Op
}

func (h *history) add(op model.Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *history) all() []model.Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]model.Op(nil), h.ops...)
}
