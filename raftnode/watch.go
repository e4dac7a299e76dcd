package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"orderly/feed"
	"orderly/serve"
	"orderly/wire"
)

// DefaultWatchHistory is --watch-history's default: 262,144 orders
// (about 12 MiB), five seconds at the fastest this cluster writes.
const DefaultWatchHistory = 1 << 18

// DefaultMaxWatchers is --max-watchers' default.
const DefaultMaxWatchers = 1000

const (
	// feedProgress is how often the feed learns of applied entries that
	// carry no orders (no-ops, barriers), while someone watches.
	feedProgress = 20 * time.Millisecond
	// filteredProgress is how often a watcher of one customer hears how
	// far the node has applied when none of it was that customer's.
	filteredProgress = 100 * time.Millisecond
	// slowCheck is how often a watcher blocked on a client that does not
	// read looks whether the feed has left it behind.
	slowCheck = 100 * time.Millisecond
)

// advanceFeed tells the feed of applied entries past the last order that
// carry none (a new leader's no-op, a barrier): a watcher learns that
// nothing happened up to them, as it would from an order.
func (n *Node) advanceFeed() {
	if n.watchers.Load() == 0 {
		return
	}
	for _, r := range append(n.dataReplicas(), n.meta) {
		applied, _ := r.group.FSM().Applied()
		if settled := r.group.SettledIndex(); settled > applied {
			r.feed.Advance(settled)
		}
	}
}

// errTooSlow ends a watcher whose client has not read while the feed
// moved past what the node still holds for it.
var errTooSlow = errors.New("watcher too slow")

// watch serves a Watch stream: the orders applied from w.From on, whole
// entries per frame, in index order, until the client goes. It reads the
// feed at its own pace and never holds up applying; if it falls behind
// what the feed holds it is cut off with Compacted.
func (n *Node) watch(ctx context.Context, from serve.Caller, w wire.Watch, send func(context.Context, wire.Message) error) wire.Message {
	if err := n.admit(from, w); err != nil {
		return wireAnswer(err)
	}
	r, err := n.feedOf(w)
	if err != nil {
		return wireAnswer(err)
	}
	f := r.feed
	if n.watchers.Add(1) > int64(n.cfg.MaxWatchers) {
		n.watchers.Add(-1)
		return wireAnswer(refuse(ErrOverloaded, "node %s serves %d watchers already (--max-watchers)", n.cfg.ID, n.cfg.MaxWatchers))
	}
	defer n.watchers.Add(-1)
	var next atomic.Uint64 // the first index not yet sent
	if w.From == 0 {
		_, through := f.Position()
		next.Store(through + 1)
		// A merger of shards keeps a position per shard: it learns this
		// one now, not at the shard's next order.
		if w.PerShard {
			if err := send(ctx, wire.Events{Through: through}); err != nil {
				return n.streamEnd(ctx, f, err)
			}
		}
	} else {
		next.Store(w.From)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n.routines.Go(func(context.Context) { // cuts off a watcher the feed has left behind while it was blocked
		t := time.NewTicker(slowCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if floor, _ := f.Position(); floor > next.Load() {
					cancel(errTooSlow)
					return
				}
			}
		}
	})
	progress := time.NewTicker(filteredProgress)
	defer progress.Stop()
	var buf []wire.Event
	sent := next.Load() - 1 // the Through the client last heard
	for first := true; ; first = false {
		events, through, changed, err := f.Read(buf[:0], next.Load(), wire.MaxEvents/2, w.Customer)
		if err != nil {
			return n.compacted(err, !first)
		}
		if through >= next.Load() {
			if len(events) > 0 || w.Customer == wire.WatchAll {
				if err := send(ctx, wire.Events{Through: through, Events: events}); err != nil {
					return n.streamEnd(ctx, f, err)
				}
				sent = through
			}
			next.Store(through + 1)
			buf = events
			continue
		}
		select {
		case <-changed:
		case <-progress.C:
			if sent < through {
				if err := send(ctx, wire.Events{Through: through}); err != nil {
					return n.streamEnd(ctx, f, err)
				}
				sent = through
			}
		case <-ctx.Done():
			return n.streamEnd(ctx, f, ctx.Err())
		}
	}
}

// feedOf is the replica whose feed w follows: of a cluster of one shard
// the meta group's (every customer's orders); of a sharded one the
// shard's, named (PerShard) or of the customer. Every customer of a
// sharded cluster is watched shard by shard: one index cannot say how
// far several shards have gone.
func (n *Node) feedOf(w wire.Watch) (*replica, error) {
	switch {
	case w.PerShard && w.Shard >= n.count: // final: no node has it
		return nil, refuse(ErrInvalid, "watch: the cluster has %d shards, not shard %d", n.count, w.Shard)
	case w.PerShard && n.count == 1:
		return n.meta, nil
	case w.PerShard:
		return n.replicaByID(w.Shard)
	case n.count == 1:
		return n.meta, nil
	case w.Customer == wire.WatchAll:
		return nil, refuse(ErrInvalid, "watch: every customer of a sharded cluster (%d shards) is watched shard by shard (a position per shard: client WatchShards, the HTTP API, orderctl watch)", n.count)
	}
	r, id := n.replicaOf(w.Customer)
	if r == nil {
		return nil, n.wrongShard(id)
	}
	return r, nil
}

// compacted is the last word of a watch whose position the feed no
// longer holds: asked for (resumed too late) or fallen behind.
func (n *Node) compacted(err error, streaming bool) wire.Message {
	var c wire.Compacted
	if !errors.As(err, &c) {
		return wireAnswer(refuse(ErrInternal, "watch: %v", err))
	}
	if streaming {
		c.Message = fmt.Sprintf("watcher too slow: it fell behind the %d orders node %s keeps (--watch-history); %s",
			n.cfg.WatchHistory, n.cfg.ID, c.Message)
	}
	return c
}

// streamEnd is the last word of a stream whose send failed or whose
// context ended: Compacted for a watcher cut off as too slow, nothing
// when the client went away.
func (n *Node) streamEnd(ctx context.Context, f *feed.Ring, err error) wire.Message {
	if errors.Is(context.Cause(ctx), errTooSlow) {
		floor, _ := f.Position()
		n.log.Info("watcher cut off: too slow", "oldest", floor)
		return n.compacted(wire.Compacted{Oldest: floor, Message: "the client did not read while the feed moved on"}, true)
	}
	n.log.Debug("watch ended", "error", err)
	return nil
}
