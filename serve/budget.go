package serve

import (
	"context"
	"errors"
	"sync"

	"orderly/wire"
)

// replyBudget bounds the bytes of replies one connection holds, computed
// or queued for a client that reads them too slowly (or never): each
// request reserves the most its reply can take before it runs, and gets
// the bytes back once its reply is written to the socket. When the budget
// is spent the connection's reader stops reading: backpressure, not
// memory. A client's connections also share a budget of the client's
// (Bounds.MaxReplyBytesPerClient), so many connections hold no more than
// a few. Closing the connection drops what it held (settle).
type replyBudget struct {
	size int64
	// client is the budget of all the client's connections (nil: none):
	// every byte taken here is taken there too.
	client *replyBudget

	mu      sync.Mutex
	free    int64
	waiting bool
	wake    chan struct{} // closed when bytes come back to a waiter
}

func newReplyBudget(size int64, client *replyBudget) *replyBudget {
	return &replyBudget{size: size, client: client, free: size, wake: make(chan struct{})}
}

// acquire takes n bytes (at most the whole budget), waiting while they
// are not free, until ctx ends or stopped is closed (the connection's
// writer stopped: nothing will come back).
func (b *replyBudget) acquire(ctx context.Context, stopped <-chan struct{}, n int64) error {
	n = min(n, b.size)
	if err := b.take(ctx, stopped, n); err != nil {
		return err
	}
	if b.client == nil {
		return nil
	}
	if err := b.client.take(ctx, stopped, n); err != nil {
		b.give(n)
		return err
	}
	return nil
}

func (b *replyBudget) take(ctx context.Context, stopped <-chan struct{}, n int64) error {
	n = min(n, b.size)
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		b.waiting = true
		w := b.wake
		b.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return errWriterStopped
		}
	}
}

// release gives n bytes back.
func (b *replyBudget) release(n int64) {
	n = min(n, b.size)
	b.give(n)
	if b.client != nil {
		b.client.give(n)
	}
}

func (b *replyBudget) give(n int64) {
	n = min(n, b.size)
	b.mu.Lock()
	b.free = min(b.free+n, b.size) // an unreserved frame (a last error) gives back nothing extra
	if b.waiting {
		b.waiting = false
		close(b.wake)
		b.wake = make(chan struct{})
	}
	b.mu.Unlock()
}

// settle gives the client's budget back what this connection still holds
// (replies it never wrote) once the connection is through: call it after
// every request and the writer have finished.
func (b *replyBudget) settle() {
	if b.client == nil {
		return
	}
	b.mu.Lock()
	held := b.size - b.free
	b.free = b.size
	b.mu.Unlock()
	b.client.give(held)
}

var errWriterStopped = errors.New("connection writer stopped")

// replyBound is the most bytes the reply to req can take, as a frame.
func replyBound(req wire.Message) int64 {
	const frame = 13 // length, type, request id
	switch r := req.(type) {
	case wire.Scan:
		return frame + 32 + int64(r.Limit)*wire.RecordSize
	case wire.Status, wire.Members:
		return frame + 16<<10
	}
	return frame + 256
}
