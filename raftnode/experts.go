package raftnode

import (
	"context"
	"sync/atomic"
)

// expertPool is the seed's pool of expert engineers: custom orders are
// built by one of a fixed number of experts, and wait for a free one. The
// queue of waiting orders is bounded; past it the node answers Overloaded
// instead of piling up work it cannot finish in time.
type expertPool struct {
	free     chan int32 // ids of idle experts
	waiting  atomic.Int64
	maxQueue int64
}

func newExpertPool(experts, maxQueue int) *expertPool {
	p := &expertPool{free: make(chan int32, experts), maxQueue: int64(maxQueue)}
	for i := 0; i < experts; i++ {
		p.free <- int32(i)
	}
	return p
}

// acquire returns the id of an idle expert; release must give it back.
func (p *expertPool) acquire(ctx context.Context) (int32, error) {
	select {
	case id := <-p.free:
		return id, nil
	default:
	}
	if p.waiting.Add(1) > p.maxQueue {
		p.waiting.Add(-1)
		return 0, refuse(ErrOverloaded, "all %d experts busy and %d custom orders queued", cap(p.free), p.maxQueue)
	}
	defer p.waiting.Add(-1)
	select {
	case id := <-p.free:
		return id, nil
	case <-ctx.Done():
		return 0, refuse(ErrOverloaded, "no expert free in time: %v", ctx.Err())
	}
}

func (p *expertPool) release(id int32) { p.free <- id }
