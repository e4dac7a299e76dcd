package lb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderly/faults"
	"orderly/feed"
	"orderly/internal/coalesce"
	"orderly/wire"
)

const (
	// feedWait bounds how long a linearizable read waits for the feed to
	// reach its read index before it goes to a node instead.
	feedWait = 100 * time.Millisecond
	// readIndexTimeout bounds one read-index round with the leader.
	readIndexTimeout = time.Second
	// feedRestart is the pause before the feed starts over after it was
	// refused or compacted.
	feedRestart = time.Second
)

// followFeed keeps the cache coherent: it follows the change feed from
// now on (of a sharded cluster, each shard's, from each shard's leader)
// and applies every order to the cached records. After a Compacted (the
// balancer fell behind, or every node lost what it needed) it empties
// the cache and starts again from now.
func (b *Balancer) followFeed(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := b.pool.waitShardCount(ctx, feedRestart)
		if err != nil {
			continue // not known yet: the probers go on asking
		}
		b.cache.follow(n)
		fresh := make([]bool, n)
		for i := range fresh {
			fresh[i] = true
		}
		apply := func(sh uint32, e wire.Events) error {
			b.cache.followed(sh, e, fresh[sh])
			fresh[sh] = false
			return nil
		}
		if n == 1 {
			all := wire.Watch{Customer: wire.WatchAll}
			err = feed.Follow(ctx, b.feedSource(wire.RoleNone, all), all, func(_ string, e wire.Events) error { return apply(0, e) })
		} else {
			err = feed.FollowShards(ctx, make([]uint64, n), func(sh uint32) feed.Source {
				return b.feedSource(wire.RoleNone, wire.Watch{Customer: wire.WatchAll, PerShard: true, Shard: sh})
			}, apply)
		}
		if err == nil {
			return
		}
		b.log.Warn("change feed ended; the cache starts over", "error", err)
		if !sleepCtx(ctx, feedRestart) {
			return
		}
	}
}

// sleepCtx waits d, or less if ctx ends first: it reports whether ctx
// is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// leaderReadIndex is one read-index round with the leader of shard sh
// (of a cluster of one shard, the leader), for every linearizable read
// of the shard waiting on the balancer at that moment (the nodes'
// ReadIndex, batched again on the leader).
func (b *Balancer) leaderReadIndex(ctx context.Context, sh uint32) (uint64, error) {
	be := b.pool.writerOf(sh)
	if be == nil {
		b.pool.pokeAll()
		return 0, errors.New("no leader known")
	}
	conn := be.usable()
	if conn == nil {
		return 0, fmt.Errorf("no connection to the leader %s", be.addr)
	}
	ctx, cancel := context.WithTimeout(ctx, readIndexTimeout)
	defer cancel()
	var idx uint64
	var err error
	if b.pool.shardCount() == 1 {
		idx, err = conn.ReadIndex(ctx)
	} else {
		var r wire.ReadIndexReply
		r, err = wire.CallAs[wire.ReadIndexReply](ctx, conn, wire.ShardReadIndex{Shard: sh}, 0)
		idx = r.Index
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeNotLeader {
		b.pool.hintShard(be, sh, we.LeaderAddr)
	}
	return idx, err
}

// readIndexOf batches the read-index rounds of shard sh's linearizable
// reads (one coalescer per shard, made on first use).
func (b *Balancer) readIndexOf(sh uint32) *coalesce.Coalescer {
	b.readIndexMu.Lock()
	defer b.readIndexMu.Unlock()
	c := b.readIndexes[sh]
	if c == nil {
		c = coalesce.New(b.routines.Context(), func(ctx context.Context) (uint64, error) { return b.leaderReadIndex(ctx, sh) })
		b.readIndexes[sh] = c
	}
	return c
}

// linearizableFromCache answers a linearizable read from the coherent
// cache: a read index from the leader of the customer's shard (covering
// every write acknowledged before the read began), then a wait until the
// shard's feed has brought the cache to it. ok is false when it cannot
// (no feed, no leader, a miss): the read then goes to a node as before.
func (b *Balancer) linearizableFromCache(ctx context.Context, g wire.Get) (wire.Record, bool) {
	if b.readIndexes == nil {
		return wire.Record{}, false
	}
	if _, coherent := b.cache.feedOf(g.CustomerID).coherentAt(); !coherent {
		return wire.Record{}, false
	}
	idx, err := b.readIndexOf(b.pool.shardOf(g.CustomerID)).Do(ctx)
	if err != nil {
		return wire.Record{}, false
	}
	idx = max(idx, g.MinIndex)
	if !faults.SkipFeedWait() && !b.cache.waitFor(ctx, g.CustomerID, idx, feedWait) {
		return wire.Record{}, false
	}
	return b.cache.getLinearizable(g.CustomerID, idx)
}
