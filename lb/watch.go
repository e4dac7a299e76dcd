package lb

import (
	"context"
	"errors"

	"orderly/feed"
	"orderly/serve"
	"orderly/wire"
)

// watch forwards a Watch to the leader (the node least behind) with the
// client's role, on a connection of its own, and relays every frame. A
// lost node is no concern of the client's: the balancer resumes on
// another node from the last frame it relayed, so the client sees one
// stream, in order, each entry once.
func (b *Balancer) watch(ctx context.Context, from serve.Caller, w wire.Watch, send func(context.Context, wire.Message) error) wire.Message {
	b.watchers.Add(1)
	defer b.watchers.Add(-1)
	src := b.feedSource(from.Role, w)
	err := feed.Follow(ctx, src, w, func(_ string, e wire.Events) error { return send(ctx, e) })
	var c wire.Compacted
	var we *wire.Error
	switch {
	case err == nil, ctx.Err() != nil:
		return nil
	case errors.As(err, &c):
		return c
	case errors.As(err, &we):
		return we
	}
	b.log.Debug("watch ended", "error", err)
	return nil
}

// feedSource reads the feed w asks for from the leader (of a sharded
// cluster, the leader of the shard watched or of the customer's), or any
// node with state when no leader is known (a node without the shard
// answers WrongShard, and the next attempt picks again), as role (the
// client's; none on a plaintext port).
func (b *Balancer) feedSource(role wire.Role, w wire.Watch) feed.Source {
	return feed.Source{
		Pick: func(int) string {
			if b.pool.shardCount() > 1 && (w.PerShard || w.Customer != wire.WatchAll) {
				sh := w.Shard
				if !w.PerShard {
					sh = b.pool.shardOf(w.Customer)
				}
				if be := b.pool.writerOf(sh); be != nil {
					return be.addr
				}
			}
			if be := b.pool.writer(); be != nil {
				return be.addr
			}
			if be := b.pool.reader(); be != nil {
				return be.addr
			}
			b.pool.pokeAll()
			return b.pool.list()[0].addr
		},
		Dial: b.pool.dial,
		Wrap: func(w wire.Watch) wire.Message {
			if role == wire.RoleNone {
				return w
			}
			return wire.AsRole{Role: role, Msg: w}
		},
	}
}
