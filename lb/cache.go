package lb

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"orderly/faults"
	"orderly/wire"
)

// cache holds customer records, each tagged with the Raft index of the
// state it was read from (wire.Record.ReadIndex, or the index of a write).
// A record tagged i is the customer's record as of some applied index >= i,
// so it may answer a session read whose client has seen no index above i.
//
// While the balancer follows the leader's change feed (feed.go) the cache
// is also coherent: every order up to pos has reached every entry, so an
// entry is the customer's record as of max(its index, pos), and a
// linearizable read whose read index is <= pos may be answered from it
// (Kubernetes' consistent reads from the watch cache, KEP-2340). To keep
// that true, an entry read from a node is added only if it is as new as
// pos (older, it may lack an order the feed has already passed).
type cache struct {
	mu  sync.Mutex // makes the newer-wins check and the add one step, and orders them with the feed
	lru *lru.Cache[int32, wire.Record]
	// pos is how far the feed has brought the cache; coherent says the
	// feed runs and has no gap since the cache was last emptied. Both
	// change under mu, after the entries they speak for, and are read
	// before the entry they vouch for, without the lock.
	pos      atomic.Uint64
	coherent atomic.Bool
	moved    chan struct{} // closed and replaced when pos moves; under mu

	hits, misses, evictions, linearizableHits atomic.Uint64
}

// newCache returns nil when size is 0: caching off.
func newCache(size int) (*cache, error) {
	if size <= 0 {
		return nil, nil
	}
	c := &cache{moved: make(chan struct{})}
	l, err := lru.NewWithEvict[int32, wire.Record](size, func(int32, wire.Record) { c.evictions.Add(1) })
	if err != nil {
		return nil, err
	}
	c.lru = l
	return c, nil
}

// get returns a record that satisfies a session or stale read with the
// client's minIndex; linearizable reads go through getLinearizable.
func (c *cache) get(id int32, cons wire.Consistency, minIndex uint64) (wire.Record, bool) {
	if c == nil || cons == wire.Linearizable {
		return wire.Record{}, false
	}
	coherent, pos := c.coherent.Load(), c.pos.Load()
	r, ok := c.lru.Get(id)
	if ok && coherent {
		r.ReadIndex = max(r.ReadIndex, pos)
	}
	if ok && (cons == wire.Stale || r.ReadIndex >= minIndex) {
		c.hits.Add(1)
		return r, true
	}
	c.misses.Add(1)
	return wire.Record{}, false
}

// getLinearizable answers a linearizable read whose read index is idx
// from the coherent cache, once the feed has brought it to idx
// (waitFor).
func (c *cache) getLinearizable(id int32, idx uint64) (wire.Record, bool) {
	coherent, pos := c.coherent.Load(), c.pos.Load()
	r, ok := c.lru.Get(id)
	if !ok || !coherent || (pos < idx && !faults.SkipFeedWait()) {
		c.misses.Add(1)
		return wire.Record{}, false
	}
	r.ReadIndex = max(r.ReadIndex, pos)
	c.hits.Add(1)
	c.linearizableHits.Add(1)
	return r, true
}

// waitFor waits, at most d, until the feed has brought the cache to idx.
func (c *cache) waitFor(ctx context.Context, idx uint64, d time.Duration) bool {
	var timer *time.Timer
	for {
		c.mu.Lock()
		done, moved := c.coherent.Load() && c.pos.Load() >= idx, c.moved
		c.mu.Unlock()
		if done {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		}
		select {
		case <-moved:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// put stores r unless the cache already holds a newer view of the
// customer, or r is older than the feed's position (it may lack an order
// the feed has passed).
func (c *cache) put(r wire.Record) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(r.CustomerID); ok && old.ReadIndex >= r.ReadIndex {
		return
	}
	if c.coherent.Load() && r.ReadIndex < c.pos.Load() {
		return
	}
	c.lru.Add(r.CustomerID, r)
}

// wrote refreshes the customer's entry from an applied order: with the
// order's count and index it is the whole record as of that index.
func (c *cache) wrote(li wire.LaptopInfo) {
	c.put(wire.Record{ReadIndex: li.Index, CustomerRecord: wire.CustomerRecord{
		CustomerID: li.CustomerID, LastOrder: li.OrderNumber, OrderCount: li.OrderCount,
		LastLaptopType: int8(li.LaptopType), LastIndex: li.Index}})
}

// follow applies one frame of the feed: each order to its customer's
// entry, if cached and older, and the feed's position. fresh says the
// feed starts over (first frame, or after Compacted): what the cache held
// may lack orders before it, so it is emptied.
func (c *cache) follow(e wire.Events, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fresh {
		c.lru.Purge()
	}
	for _, ev := range e.Events {
		if old, ok := c.lru.Peek(ev.CustomerID); ok && ev.Index > old.ReadIndex {
			c.lru.Add(ev.CustomerID, wire.Record{CustomerRecord: ev.Record(), ReadIndex: ev.Index})
		}
	}
	// After a fresh start pos may stay above the new feed's first
	// Through: every entry is then added as new as pos, so it holds.
	c.pos.Store(max(c.pos.Load(), e.Through))
	c.coherent.Store(true)
	close(c.moved)
	c.moved = make(chan struct{})
}

// position is how far the feed has brought the cache, and whether it is
// coherent.
func (c *cache) position() (uint64, bool) { return c.pos.Load(), c.coherent.Load() }

func (c *cache) stats() []wire.Stat {
	if c == nil {
		return []wire.Stat{{Name: "cache_size", Value: 0}}
	}
	pos, coherent := c.position()
	v := uint64(0)
	if coherent {
		v = 1
	}
	return []wire.Stat{
		{Name: "cache_size", Value: uint64(c.lru.Len())},
		{Name: "cache_hits", Value: c.hits.Load()},
		{Name: "cache_misses", Value: c.misses.Load()},
		{Name: "cache_evictions", Value: c.evictions.Load()},
		{Name: "cache_linearizable_hits", Value: c.linearizableHits.Load()},
		{Name: "cache_feed_index", Value: pos},
		{Name: "cache_coherent", Value: v},
	}
}
