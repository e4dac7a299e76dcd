package wire

import (
	"sync"
	"time"
)

// FrameBudget bounds the bytes of big frames being read at once across
// every connection of a server: a declared length reserves nothing, and
// the bytes that arrive take room here as they come; once it is spent,
// readers of big frames wait (their connections are not read) until room
// comes back or their frame deadline passes. Frames of at most growStep
// bytes, every request orderly's clients send, do not count.
type FrameBudget struct {
	size int64

	mu   sync.Mutex
	free int64
	wake chan struct{} // closed when room comes back
}

// NewFrameBudget is a budget of size bytes.
func NewFrameBudget(size int64) *FrameBudget {
	return &FrameBudget{size: size, free: size, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting until deadline (zero: for good).
func (b *FrameBudget) acquire(n int64, deadline time.Time) bool {
	n = min(n, b.size)
	var timer <-chan time.Time
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return true
		}
		w := b.wake
		b.mu.Unlock()
		if timer == nil && !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-w:
		case <-timer:
			return false
		}
	}
}

// release gives n bytes back.
func (b *FrameBudget) release(n int64) {
	n = min(n, b.size)
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free = min(b.free+n, b.size)
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// InUse is the bytes held by frames being read.
func (b *FrameBudget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size - b.free
}
