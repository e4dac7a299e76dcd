package client

import (
	"context"
	"fmt"
	"time"

	"orderly/shard"
	"orderly/wire"
)

// shardOf is the shard that holds customer. The first call asks the
// cluster for its shard count (fixed when the cluster was created); a
// node or balancer of a single-group release does not know the request,
// and its cluster is one shard.
func (c *Client) shardOf(ctx context.Context, customer int32) (uint32, error) {
	n, err := c.shardCount(ctx)
	if err != nil {
		return 0, err
	}
	return shard.Of(customer, n), nil
}

// ShardCount is the cluster's shard count (asked once; fixed when the
// cluster was created).
func (c *Client) ShardCount(ctx context.Context) (uint32, error) { return c.shardCount(ctx) }

func (c *Client) shardCount(ctx context.Context) (uint32, error) {
	if n := c.shards.Load(); n != 0 {
		return n, nil
	}
	c.shardsMu.Lock()
	defer c.shardsMu.Unlock()
	if n := c.shards.Load(); n != 0 {
		return n, nil
	}
	m, err := doAs[wire.ShardMap](ctx, c, anyNode, wire.Shards{})
	n := uint32(len(m.Shards))
	if code, ok := wire.CodeOf(err); ok && code == wire.CodeBadRequest {
		n, err = 1, nil // an earlier release: "Shards is not a request"
	}
	if err != nil {
		return 0, fmt.Errorf("client: ask the cluster for its shards: %w", err)
	}
	if err := shard.Check(n); err != nil {
		return 0, fmt.Errorf("client: the cluster's shard map: %w", err)
	}
	c.shards.Store(n)
	return n, nil
}

// ShardMap asks any node (or balancer) for the cluster's shard map.
func (c *Client) ShardMap(ctx context.Context) (wire.ShardMap, error) {
	return doAs[wire.ShardMap](ctx, c, anyNode, wire.Shards{})
}

// ShardStatusOf asks one address for its replica of shard id, without
// retries (Role "none": it holds none).
func (c *Client) ShardStatusOf(ctx context.Context, addr string, id uint32) (wire.StatusInfo, error) {
	conn, err := c.conn(ctx, addr)
	if err != nil {
		return wire.StatusInfo{}, err
	}
	return wire.CallAs[wire.StatusInfo](ctx, conn, wire.ShardStatus{Shard: id}, 0)
}

// WaitShardLeaders waits until the shard map names a leader of every
// shard (a new or restored cluster's elections), or ctx ends.
func (c *Client) WaitShardLeaders(ctx context.Context) error {
	for {
		m, err := c.ShardMap(ctx)
		ok := err == nil && len(m.Shards) > 0
		for _, s := range m.Shards {
			ok = ok && s.Leader != ""
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader of every shard: %w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
