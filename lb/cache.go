package lb

import (
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"orderly/wire"
)

// cache holds customer records, each tagged with the Raft index of the
// state it was read from (wire.Record.ReadIndex, or the index of a write).
// A record tagged i is the customer's record as of some applied index >= i,
// so it may answer a session read whose client has seen no index above i.
type cache struct {
	mu  sync.Mutex // makes the newer-wins check and the add one step
	lru *lru.Cache[int32, wire.Record]

	hits, misses, evictions atomic.Uint64
}

// newCache returns nil when size is 0: caching off.
func newCache(size int) (*cache, error) {
	if size <= 0 {
		return nil, nil
	}
	c := &cache{}
	l, err := lru.NewWithEvict[int32, wire.Record](size, func(int32, wire.Record) { c.evictions.Add(1) })
	if err != nil {
		return nil, err
	}
	c.lru = l
	return c, nil
}

// get returns a record that satisfies a read at level cons with the
// client's minIndex; linearizable reads never hit.
func (c *cache) get(id int32, cons wire.Consistency, minIndex uint64) (wire.Record, bool) {
	if c == nil || cons == wire.Linearizable {
		return wire.Record{}, false
	}
	r, ok := c.lru.Get(id)
	if ok && (cons == wire.Stale || r.ReadIndex >= minIndex) {
		c.hits.Add(1)
		return r, true
	}
	c.misses.Add(1)
	return wire.Record{}, false
}

// put stores r unless the cache already holds a newer view of the customer.
func (c *cache) put(r wire.Record) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(r.CustomerID); ok && old.ReadIndex >= r.ReadIndex {
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

func (c *cache) stats() []wire.Stat {
	if c == nil {
		return []wire.Stat{{Name: "cache_size", Value: 0}}
	}
	return []wire.Stat{
		{Name: "cache_size", Value: uint64(c.lru.Len())},
		{Name: "cache_hits", Value: c.hits.Load()},
		{Name: "cache_misses", Value: c.misses.Load()},
		{Name: "cache_evictions", Value: c.evictions.Load()},
	}
}
