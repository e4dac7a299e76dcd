// Package coalesce batches concurrent callers of an expensive index
// lookup into one call: a node's ReadIndex rounds (VerifyLeader as
// leader, an RPC to the leader as follower) and the balancer's.
package coalesce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrClosed: the coalescer's context ended before a round could run.
var ErrClosed = errors.New("index lookups closed: shutting down")

// Coalescer batches concurrent callers of an expensive index lookup (a
// VerifyLeader round, or a ReadIndex RPC to the leader) into one call.
//
// A caller may only share a round that starts after it arrived: the
// round's index must cover every write acknowledged before the caller's
// read began. So callers that arrive while a round is running wait for
// the next one, which starts as soon as the running one ends.
type Coalescer struct {
	fn   func(context.Context) (uint64, error)
	ctx  context.Context
	kick chan struct{}
	done chan struct{}

	mu   sync.Mutex
	next *round // collects callers until the loop takes it

	// Rounds and Reads count the rounds run and the callers they served
	// (metrics: reads per round).
	Rounds, Reads atomic.Uint64
}

type round struct {
	done chan struct{}
	idx  uint64
	err  error
}

func New(ctx context.Context, fn func(context.Context) (uint64, error)) *Coalescer {
	c := &Coalescer{fn: fn, ctx: ctx, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// Do joins the next round and returns its index.
func (c *Coalescer) Do(ctx context.Context) (uint64, error) {
	c.Reads.Add(1)
	c.mu.Lock()
	if c.next == nil {
		c.next = &round{done: make(chan struct{})}
	}
	r := c.next
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *Coalescer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			c.mu.Lock()
			r := c.next
			c.next = nil
			c.mu.Unlock()
			if r != nil {
				r.err = ErrClosed
				close(r.done)
			}
			return
		case <-c.kick:
		}
		c.mu.Lock()
		r := c.next
		c.next = nil
		c.mu.Unlock()
		if r == nil {
			continue
		}
		if c.ctx.Err() != nil { // shutting down: do not start another round
			r.err = ErrClosed
			close(r.done)
			continue
		}
		c.Rounds.Add(1)
		r.idx, r.err = c.fn(c.ctx)
		close(r.done)
	}
}

// Wait blocks until the loop has stopped (after its ctx ended).
func (c *Coalescer) Wait() { <-c.done }
