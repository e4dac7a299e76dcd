//go:build faults

package fsm

import "sync"

// testHooks lets a test stall the FSM goroutine (faults builds only).
type testHooks struct {
	mu    sync.Mutex
	stall chan struct{} // non-nil: ApplyBatch waits until it is closed
}

// beforeApply runs on raft's FSM goroutine before each batch, outside
// f.mu so reads go on while the FSM is stalled.
func (h *testHooks) beforeApply() {
	h.mu.Lock()
	ch := h.stall
	h.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// StallApply makes every later ApplyBatch wait until release is called,
// as a busy FSM would (a large batch, a Snapshot on the FSM goroutine).
// Only in builds with -tags faults.
func (f *FSM) StallApply() (release func()) {
	ch := make(chan struct{})
	f.hooks.mu.Lock()
	f.hooks.stall = ch
	f.hooks.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.hooks.mu.Lock()
			f.hooks.stall = nil
			f.hooks.mu.Unlock()
			close(ch)
		})
	}
}
