package lb

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"orderly/faults"
	"orderly/shard"
	"orderly/wire"
)

// cache holds customer records, each tagged with the Raft index of the
// state it was read from (wire.Record.ReadIndex, or the index of a write).
// A record tagged i is the customer's record as of some applied index >= i,
// so it may answer a session read whose client has seen no index above i.
//
// While the balancer follows the change feed (linearizable.go) the cache
// is also coherent: every order up to pos has reached every entry, so an
// entry is the customer's record as of max(its index, pos), and a
// linearizable read whose read index is <= pos may be answered from it
// (Kubernetes' consistent reads from the watch cache, KEP-2340). To keep
// that true, an entry read from a node is added only if it is as new as
// pos (older, it may lack an order the feed has already passed). A
// sharded cluster has a feed, and so a pos, per shard; an entry's index
// is its customer's shard's.
type cache struct {
	mu  sync.Mutex // makes the newer-wins check and the add one step, and orders them with the feed
	lru *lru.Cache[int32, wire.Record]
	// feeds are the shards' feeds the cache follows, by shard (one of a
	// cluster of one shard); nil until following starts. Replaced under mu.
	feeds atomic.Pointer[[]*feedPos]
	moved chan struct{} // closed and replaced when a pos moves; under mu

	hits, misses, evictions, linearizableHits atomic.Uint64
}

// feedPos is how far one shard's feed has brought the cache (pos), and
// whether it is coherent: the feed runs and has no gap since the shard's
// entries were last emptied. Both change under cache.mu, after the
// entries they speak for, and are read before the entry they vouch for,
// without the lock.
type feedPos struct {
	pos      atomic.Uint64
	coherent atomic.Bool
}

// feedOf is the feed customer id's entry follows; nil while none is.
func (c *cache) feedOf(id int32) *feedPos {
	f := c.feeds.Load()
	if f == nil {
		return nil
	}
	return (*f)[shard.Of(id, uint32(len(*f)))]
}

// coherentAt is fp's position, if fp is coherent.
func (fp *feedPos) coherentAt() (uint64, bool) {
	if fp == nil || !fp.coherent.Load() {
		return 0, false
	}
	return fp.pos.Load(), true
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
	pos, coherent := c.feedOf(id).coherentAt()
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
	pos, coherent := c.feedOf(id).coherentAt()
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

// waitFor waits, at most d, until the feed of customer id's shard has
// brought the cache to idx.
func (c *cache) waitFor(ctx context.Context, id int32, idx uint64, d time.Duration) bool {
	var timer *time.Timer
	for {
		c.mu.Lock()
		pos, coherent := c.feedOf(id).coherentAt()
		done, moved := coherent && pos >= idx, c.moved
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
	if pos, coherent := c.feedOf(r.CustomerID).coherentAt(); coherent && r.ReadIndex < pos {
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

// follow starts following shards feeds, each from a fresh start: no
// shard is coherent until its feed's first frame.
func (c *cache) follow(shards uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := make([]*feedPos, shards)
	for i := range f {
		f[i] = &feedPos{}
	}
	c.feeds.Store(&f)
}

// followed applies one frame of shard sh's feed: each order to its
// customer's entry, if cached and older, and the feed's position. fresh
// says the feed starts over (first frame, or after Compacted): what the
// cache held of the shard may lack orders before it, so it is dropped.
func (c *cache) followed(sh uint32, e wire.Events, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	feeds := c.feeds.Load()
	if feeds == nil || int(sh) >= len(*feeds) {
		return
	}
	fp := (*feeds)[sh]
	if fresh {
		if len(*feeds) == 1 {
			c.lru.Purge()
		} else {
			for _, id := range c.lru.Keys() {
				if shard.Of(id, uint32(len(*feeds))) == sh {
					c.lru.Remove(id)
				}
			}
		}
	}
	for _, ev := range e.Events {
		if old, ok := c.lru.Peek(ev.CustomerID); ok && ev.Index > old.ReadIndex {
			c.lru.Add(ev.CustomerID, wire.Record{CustomerRecord: ev.Record(), ReadIndex: ev.Index})
		}
	}
	// After a fresh start pos may stay above the new feed's first
	// Through: every entry is then added as new as pos, so it holds.
	fp.pos.Store(max(fp.pos.Load(), e.Through))
	fp.coherent.Store(true)
	close(c.moved)
	c.moved = make(chan struct{})
}

// position is how far the feeds have brought the cache (summed over
// shards), and whether every one is coherent.
func (c *cache) position() (uint64, bool) {
	f := c.feeds.Load()
	if f == nil {
		return 0, false
	}
	var sum uint64
	for _, fp := range *f {
		pos, ok := fp.coherentAt()
		if !ok {
			return sum, false
		}
		sum += pos
	}
	return sum, true
}

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
