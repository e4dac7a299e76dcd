package lb

import (
	"testing"

	"orderly/shard"
	"orderly/wire"
)

func rec(id, last int32, idx uint64) wire.Record {
	return wire.Record{ReadIndex: idx, CustomerRecord: wire.CustomerRecord{CustomerID: id, LastOrder: last, OrderCount: uint64(last), LastIndex: idx}}
}

func TestCacheLevels(t *testing.T) {
	c, err := newCache(10)
	if err != nil {
		t.Fatal(err)
	}
	c.put(rec(1, 3, 30))
	if _, ok := c.get(1, wire.Linearizable, 0); ok {
		t.Fatal("a linearizable read was answered from the cache")
	}
	if r, ok := c.get(1, wire.Stale, 1000); !ok || r.LastOrder != 3 {
		t.Fatalf("stale read: %v %v, want the cached entry whatever the client has seen", r, ok)
	}
	if _, ok := c.get(1, wire.Session, 31); ok {
		t.Fatal("session read of a client that has seen index 31 was answered by an entry of index 30")
	}
	if r, ok := c.get(1, wire.Session, 30); !ok || r.LastOrder != 3 {
		t.Fatalf("session read at the entry's own index: %v %v", r, ok)
	}
	if h, m := c.hits.Load(), c.misses.Load(); h != 2 || m != 1 {
		t.Fatalf("hits %d misses %d, want 2 and 1 (linearizable reads are not counted)", h, m)
	}
}

func TestCacheKeepsNewest(t *testing.T) {
	c, _ := newCache(10)
	c.wrote(wire.LaptopInfo{CustomerID: 1, OrderNumber: 5, LaptopType: wire.Custom, Index: 50, OrderCount: 5})
	c.put(rec(1, 4, 40)) // a read that started before the write answers late
	r, ok := c.get(1, wire.Stale, 0)
	if !ok || r.LastOrder != 5 || r.OrderCount != 5 || r.ReadIndex != 50 || r.LastLaptopType != int8(wire.Custom) {
		t.Fatalf("entry %+v: an older read replaced a newer write", r)
	}
	c.put(rec(1, 6, 60))
	if r, _ := c.get(1, wire.Stale, 0); r.LastOrder != 6 {
		t.Fatalf("entry %+v: a newer read did not replace the entry", r)
	}
}

func TestCacheCapacity(t *testing.T) {
	c, _ := newCache(3)
	for i := range int32(10) {
		c.put(rec(i, 1, uint64(i+1)))
	}
	if n := c.lru.Len(); n != 3 {
		t.Fatalf("%d entries, capacity 3", n)
	}
	if e := c.evictions.Load(); e != 7 {
		t.Fatalf("%d evictions, want 7", e)
	}
	if _, ok := c.get(0, wire.Stale, 0); ok {
		t.Fatal("the least recently used entry survived")
	}
}

func TestCacheOff(t *testing.T) {
	c, err := newCache(0)
	if err != nil || c != nil {
		t.Fatalf("size 0: %v %v, want no cache", c, err)
	}
	c.put(rec(1, 1, 1)) // nil cache: no-ops, no panic
	if _, ok := c.get(1, wire.Stale, 0); ok {
		t.Fatal("a disabled cache answered")
	}
}

func event(id, number int32, idx uint64) wire.Event {
	return wire.Event{Index: idx, CustomerID: id, OrderNumber: number, OrderCount: uint64(number), EngineerID: 1, ExpertID: -1}
}

// TestCacheFollowsTheFeed: the feed updates cached entries (and only
// those), moves the position linearizable reads wait for, and keeps out
// a record read from a node that is older than the position (it may lack
// an order the feed has passed).
func TestCacheFollowsTheFeed(t *testing.T) {
	c, _ := newCache(10)
	c.put(rec(1, 3, 30))
	c.put(rec(2, 7, 20))
	if _, ok := c.getLinearizable(1, 30); ok {
		t.Fatal("a linearizable read was answered before the feed started")
	}
	c.follow(1)
	c.followed(0, wire.Events{Through: 35}, true) // the feed starts: what was cached may be older than it
	if c.lru.Len() != 0 {
		t.Fatalf("a fresh feed kept %d entries of before", c.lru.Len())
	}
	c.put(rec(1, 3, 34)) // read at 34, before the feed's 35: it may lack an order at 35
	c.put(rec(2, 7, 36)) // read at 36: as new as the feed
	if _, ok := c.lru.Peek(1); ok {
		t.Fatal("a record older than the feed's position was cached")
	}
	if _, ok := c.getLinearizable(2, 37); ok {
		t.Fatal("a read at index 37 was answered from a cache the feed has brought to 35")
	}
	c.followed(0, wire.Events{Through: 40, Events: []wire.Event{event(2, 8, 38), event(3, 1, 39)}}, false)
	r, ok := c.getLinearizable(2, 37)
	if !ok || r.LastOrder != 8 || r.OrderCount != 8 || r.ReadIndex != 40 {
		t.Fatalf("customer 2 after the feed's order 8 at 38: %+v %v", r, ok)
	}
	if _, ok := c.lru.Peek(3); ok {
		t.Fatal("the feed added a customer the cache did not hold")
	}
	// An event the entry already holds changes nothing.
	c.put(rec(4, 2, 45))
	c.followed(0, wire.Events{Through: 46, Events: []wire.Event{event(4, 2, 44)}}, false)
	if r, _ := c.lru.Peek(4); r.ReadIndex != 45 || r.LastOrder != 2 {
		t.Fatalf("an older event rewrote an entry: %+v", r)
	}
	// A read index the feed has not reached is not answered.
	if _, ok := c.getLinearizable(2, 100); ok {
		t.Fatal("a linearizable read was answered before the feed reached its read index")
	}
	if pos, coherent := c.position(); pos != 46 || !coherent {
		t.Fatalf("position %d coherent %v", pos, coherent)
	}
}

// TestCacheFollowsEachShardsFeed: in a sharded cluster each shard's feed
// moves only its customers' position; a shard whose feed starts over
// drops its own entries and no other's; a shard whose feed has not
// started serves no linearizable read.
func TestCacheFollowsEachShardsFeed(t *testing.T) {
	c, _ := newCache(100)
	const shards = 3
	var a, b int32 = -1, -1 // a customer of shard 0 and one of shard 1
	for id := int32(0); a < 0 || b < 0; id++ {
		switch shard.Of(id, shards) {
		case 0:
			a = max(a, id)
		case 1:
			b = max(b, id)
		}
	}
	c.follow(shards)
	c.followed(0, wire.Events{Through: 500}, true)
	c.put(rec(a, 1, 501))
	c.put(rec(b, 1, 7))
	if _, ok := c.getLinearizable(b, 7); ok {
		t.Fatal("a linearizable read of a shard whose feed has not started was answered")
	}
	if pos, coherent := c.position(); coherent || pos != 500 {
		t.Fatalf("position %d coherent %v, want 500 and not coherent (two shards not started)", pos, coherent)
	}
	c.followed(1, wire.Events{Through: 10}, true)
	if _, ok := c.lru.Peek(a); !ok {
		t.Fatal("shard 1's fresh start dropped shard 0's entry")
	}
	c.put(rec(b, 2, 11))
	if r, ok := c.getLinearizable(b, 10); !ok || r.LastOrder != 2 || r.ReadIndex != 11 {
		t.Fatalf("shard 1 at 10: %+v %v", r, ok)
	}
	// Shard 1's position does not cover shard 0's reads, nor the reverse.
	if _, ok := c.getLinearizable(a, 502); ok {
		t.Fatal("a read of shard 0 at 502 was answered while its feed is at 500")
	}
	c.followed(2, wire.Events{Through: 3}, true)
	if pos, coherent := c.position(); !coherent || pos != 513 {
		t.Fatalf("position %d coherent %v, want 513 (the sum) and coherent", pos, coherent)
	}
	c.followed(0, wire.Events{Through: 600}, true) // shard 0 starts over
	if _, ok := c.lru.Peek(a); ok {
		t.Fatal("shard 0 started over and kept its entry")
	}
	if _, ok := c.lru.Peek(b); !ok {
		t.Fatal("shard 0 started over and dropped shard 1's entry")
	}
}
