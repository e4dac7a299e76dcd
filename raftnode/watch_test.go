package raftnode

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"orderly/feed"
	"orderly/serve"
	"orderly/shard"
	"orderly/wire"
)

// shardWatch collects what a client's WatchShards delivers: each
// customer's orders, each shard's position, and whether a shard's frames
// ever went back in index order.
type shardWatch struct {
	mu     sync.Mutex
	orders map[int32][]int32 // customer -> order numbers, as delivered
	pos    []uint64          // per shard: the last frame's Through + 1
	last   []uint64          // per shard: the last event's index
	badOrd string
}

func newShardWatch(shards int) *shardWatch {
	return &shardWatch{orders: map[int32][]int32{}, pos: make([]uint64, shards), last: make([]uint64, shards)}
}

func (w *shardWatch) frame(sh uint32, e wire.Events) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range e.Events {
		if ev.Index < w.last[sh] && w.badOrd == "" {
			w.badOrd = "shard's events out of index order"
		}
		if got := shard.Of(ev.CustomerID, uint32(len(w.pos))); got != sh {
			w.badOrd = "an event of another shard's customer"
		}
		w.last[sh] = ev.Index
		w.orders[ev.CustomerID] = append(w.orders[ev.CustomerID], ev.OrderNumber)
	}
	w.pos[sh] = e.Through + 1
	return nil
}

// started says whether every shard has told its position.
func (w *shardWatch) started() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pos {
		if p == 0 {
			return false
		}
	}
	return true
}

func (w *shardWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, o := range w.orders {
		n += len(o)
	}
	return n
}

// TestWatchEveryCustomerShardByShard: a client follows every customer of
// a sharded cluster, each shard's feed from a replica (some nodes hold
// none of a shard), stops, and resumes from a position per shard: it sees
// every order once, each shard's in index order.
func TestWatchEveryCustomerShardByShard(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) { c.Shards, c.Replicas = testShards, 2 })
	tc.waitMap(2)
	cl := tc.client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const customers = 30
	placeRound := func(number int32) {
		for c := range int32(customers) {
			if _, err := cl.Order(ctx, c, number, wire.Regular); err != nil {
				t.Fatalf("order %d of customer %d: %v", number, c, err)
			}
		}
	}
	seen := newShardWatch(testShards)
	follow := func(ctx context.Context, from []uint64) chan error {
		done := make(chan error, 1)
		go func() { done <- cl.WatchShards(ctx, from, seen.frame) }()
		return done
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 20 s (%d orders seen)", what, seen.count())
			}
		}
	}

	wctx, stop := context.WithCancel(ctx)
	done := follow(wctx, nil)
	waitFor("every shard's position", seen.started)
	placeRound(1)
	waitFor("round 1", func() bool { return seen.count() == customers })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("watch ended with %v, want nil after its context", err)
	}
	seen.mu.Lock()
	resume := append([]uint64(nil), seen.pos...)
	seen.mu.Unlock()
	placeRound(2) // while nobody watches
	placeRound(3)
	wctx, stop = context.WithCancel(ctx)
	defer stop()
	done = follow(wctx, resume)
	waitFor("rounds 2 and 3 after the resume", func() bool { return seen.count() == 3*customers })
	time.Sleep(100 * time.Millisecond) // nothing more may come
	stop()
	<-done
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if seen.badOrd != "" {
		t.Fatal(seen.badOrd)
	}
	for c := range int32(customers) {
		if got := seen.orders[c]; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Errorf("customer %d: orders %v seen, want [1 2 3] once each", c, got)
		}
	}
}

// TestWatchOfAShardRefusals: a node refuses a watch of every customer of
// a sharded cluster without a shard, and names the shard's leader for a
// shard it holds no replica of; a position the shard no longer holds
// ends the merged watch with that shard's Compacted.
func TestWatchOfAShardRefusals(t *testing.T) {
	tc := newTestClusterWith(t, func(c *Config) {
		c.Shards, c.Replicas = testShards, 2
		c.WatchHistory = 8
	})
	m := tc.waitMap(2)
	n := tc.nodes[0]
	send := func(context.Context, wire.Message) error { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e, ok := n.watch(ctx, serve.Caller{ConnID: 1, Role: wire.RoleReader}, wire.Watch{Customer: wire.WatchAll}, send).(*wire.Error); !ok || e.Code != wire.CodeBadRequest {
		t.Fatalf("watch of every customer without a shard: %v, want BadRequest", e)
	}
	// A shard the cluster does not have is final (BadRequest), not a
	// WrongShard to follow forever; so is a backup of one.
	if e, ok := n.watch(ctx, serve.Caller{ConnID: 1, Role: wire.RoleReader}, wire.Watch{Customer: wire.WatchAll, PerShard: true, Shard: 99}, send).(*wire.Error); !ok || e.Code != wire.CodeBadRequest {
		t.Fatalf("watch of shard 99 of 3: %v, want BadRequest", e)
	}
	if e, ok := call(t, n, wire.Backup{PerShard: true, Shard: 99}).(*wire.Error); !ok || e.Code != wire.CodeBadRequest {
		t.Fatalf("backup of shard 99 of 3: %v, want BadRequest", e)
	}
	for _, s := range m.Shards {
		if n.replicas()[s.ID] != nil {
			continue
		}
		resp := n.watch(ctx, serve.Caller{ConnID: 1, Role: wire.RoleReader}, wire.Watch{Customer: wire.WatchAll, PerShard: true, Shard: s.ID}, send)
		if e, ok := resp.(*wire.Error); !ok || e.Code != wire.CodeWrongShard || e.LeaderAddr == "" {
			t.Fatalf("watch of shard %d on %s, which holds none: %v, want WrongShard naming its leader", s.ID, n.cfg.ID, resp)
		}
	}
	// Push shard 0's feed past index 1, then ask for index 1 of it.
	cl := tc.client()
	for k := int32(1); k <= 40; k++ {
		if _, err := cl.Order(ctx, firstOf(0), k, wire.Regular); err != nil {
			t.Fatal(err)
		}
	}
	err := cl.WatchShards(ctx, []uint64{1, 0, 0}, func(uint32, wire.Events) error { return nil })
	var se *feed.ShardError
	var c wire.Compacted
	if !errors.As(err, &se) || se.Shard != 0 || !errors.As(err, &c) || c.Oldest <= 1 {
		t.Fatalf("watch from a compacted position of shard 0: %v, want shard 0's Compacted", err)
	}
}
