package lb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderly/faults"
	"orderly/feed"
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

// followFeed keeps the cache coherent: it follows the leader's change
// feed from now on and applies every order to the cached records. After
// a Compacted (the balancer fell behind, or every node lost what it
// needed) it empties the cache and starts again from now.
func (b *Balancer) followFeed(ctx context.Context) {
	for ctx.Err() == nil {
		if b.pool.shardCount() > 1 {
			// A sharded cluster has no one change feed yet: the cache
			// serves no linearizable read, and the leaders do.
			if !sleepCtx(ctx, feedRestart) {
				return
			}
			continue
		}
		fresh := true
		all := wire.Watch{Customer: wire.WatchAll}
		err := feed.Follow(ctx, b.feedSource(wire.RoleNone, all), all,
			func(_ string, e wire.Events) error {
				b.cache.follow(e, fresh)
				fresh = false
				return nil
			})
		if err == nil {
			return
		}
		if b.pool.shardCount() == 1 {
			b.log.Warn("change feed ended; the cache starts over", "error", err)
		}
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

// leaderReadIndex is one read-index round with the leader, for every
// linearizable read waiting on the balancer at that moment (the nodes'
// ReadIndex, batched again on the leader).
func (b *Balancer) leaderReadIndex(ctx context.Context) (uint64, error) {
	be := b.pool.writer()
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
	idx, err := conn.ReadIndex(ctx)
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeNotLeader {
		b.pool.hint(be, we.LeaderAddr)
	}
	return idx, err
}

// linearizableFromCache answers a linearizable read from the coherent
// cache: a read index from the leader (covering every write acknowledged
// before the read began), then a wait until the feed has brought the
// cache to it. ok is false when it cannot (no feed, no leader, a miss):
// the read then goes to a node as before.
func (b *Balancer) linearizableFromCache(ctx context.Context, g wire.Get) (wire.Record, bool) {
	if b.readIndex == nil {
		return wire.Record{}, false
	}
	if _, coherent := b.cache.position(); !coherent {
		return wire.Record{}, false
	}
	idx, err := b.readIndex.Do(ctx)
	if err != nil {
		return wire.Record{}, false
	}
	idx = max(idx, g.MinIndex)
	if !faults.SkipFeedWait() && !b.cache.waitFor(ctx, idx, feedWait) {
		return wire.Record{}, false
	}
	return b.cache.getLinearizable(g.CustomerID, idx)
}
