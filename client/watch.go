package client

import (
	"context"

	"orderly/feed"
	"orderly/wire"
)

// Watch follows the change feed from index from (0: from now) for one
// customer (wire.WatchAll: every one), calling fn with each frame in
// index order, each entry once. A lost connection resumes on the next
// address from where it stopped. It returns when ctx ends (nil), fn
// fails, or the feed answers wire.Compacted or refuses the watch. In a
// sharded cluster one customer's feed is its shard's: index positions
// are that shard's, and the watch goes to the shard's leader first.
func (c *Client) Watch(ctx context.Context, from uint64, customer int32, fn func(wire.Events) error) error {
	to := anyNode
	if customer != wire.WatchAll {
		sh, err := c.shardOf(ctx, customer)
		if err != nil {
			return err
		}
		to = c.toLeaderOf(sh)
	}
	first := c.pick(to)
	src := feed.Source{
		Pick: func(attempt int) string {
			if attempt == 0 {
				return first
			}
			c.rotate(first)
			first = c.pick(to)
			return first
		},
		Dial: wire.DialOptions{Timeout: c.opt.DialTimeout, MaxFrame: c.opt.MaxFrame, TLS: c.opt.TLS},
	}
	return feed.Follow(ctx, src, wire.Watch{From: from, Customer: customer}, func(_ string, e wire.Events) error { return fn(e) })
}
