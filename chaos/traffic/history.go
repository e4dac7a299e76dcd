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

// all is the history so far. Operations added later go beyond the
// slice's capacity, so it needs no copy: a long run's ten million
// operations take 1.3 GB once. Callers must not write to it.
func (h *history) all() []model.Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ops[:len(h.ops):len(h.ops)]
}
