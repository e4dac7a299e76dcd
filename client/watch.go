package client

import (
	"context"
	"fmt"

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
	return feed.Follow(ctx, c.feedSource(to), wire.Watch{From: from, Customer: customer}, func(_ string, e wire.Events) error { return fn(e) })
}

// WatchShards follows every customer's orders shard by shard (a cluster
// of one shard: its one feed): shard i from index from[i] (0: from now;
// a nil from: every shard from now), calling fn with each frame and its
// shard, one call at a time. Each shard's frames come in its index
// order, each entry once; shards are not ordered among themselves. The
// position to resume from is a position per shard: each shard's last
// Through + 1. It returns as Watch does; a shard's Compacted or refusal
// comes as a *feed.ShardError (errors.As finds the wire.Compacted).
func (c *Client) WatchShards(ctx context.Context, from []uint64, fn func(shard uint32, e wire.Events) error) error {
	n, err := c.shardCount(ctx)
	if err != nil {
		return err
	}
	if from == nil {
		from = make([]uint64, n)
	}
	if len(from) != int(n) {
		return fmt.Errorf("client: %d positions for a cluster of %d shards: give one per shard", len(from), n)
	}
	return feed.FollowShards(ctx, from, func(sh uint32) feed.Source { return c.feedSource(c.toLeaderOf(sh)) }, fn)
}

// feedSource reads a feed from the nodes of route to, the first pick
// first, the next one after each failure.
func (c *Client) feedSource(to route) feed.Source {
	first := c.pick(to)
	return feed.Source{
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
}
