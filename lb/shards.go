package lb

import (
	"context"
	"fmt"
	"time"

	"orderly/internal/wait"
	"orderly/shard"
	"orderly/wire"
)

// A sharded cluster has a leader per shard, and one of its meta group.
// The pool keeps the meta group's in leader (learned from Status, as in
// a cluster of one shard, where it leads shard 0 too: admin calls go
// there) and the shards' in shardLeaders, learned from the shard map its
// probers ask every node for and from NotLeader and WrongShard answers;
// writes go to the leader of their customer's shard.

// probeShards asks b for the shard map after a good Status probe: how
// many shards (fixed when the cluster was created) and who leads each. A
// node of a single-group release does not know the request: one shard.
func (p *pool) probeShards(ctx context.Context, b *backend) {
	conn := b.usable()
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	m, err := wire.CallAs[wire.ShardMap](ctx, conn, wire.Shards{}, 0)
	if code, ok := wire.CodeOf(err); ok && code == wire.CodeBadRequest {
		p.shards.CompareAndSwap(0, 1)
		return
	}
	if err != nil || shard.Check(uint32(len(m.Shards))) != nil {
		return
	}
	p.shards.Store(uint32(len(m.Shards)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(m.Shards) == 1 {
		return
	}
	for _, s := range m.Shards {
		if s.LeaderAddr == "" {
			continue
		}
		if to := p.backendAt(s.LeaderAddr); to != nil {
			p.shardLeaders[s.ID] = to
		}
	}
}

// shardCount is the cluster's shard count; 1 until a prober has learned it.
func (p *pool) shardCount() uint32 { return max(p.shards.Load(), 1) }

// shardOf is the shard of customer.
func (p *pool) shardOf(customer int32) uint32 { return shard.Of(customer, p.shardCount()) }

// waitShardOf is the shard of customer once the shard count is known,
// waiting for the probers up to within: a seed connection's numbering is
// per shard, and a wrong count would start a session at seq > 1.
func (p *pool) waitShardOf(ctx context.Context, customer int32, within time.Duration) (uint32, error) {
	n, err := p.waitShardCount(ctx, within)
	if err != nil {
		return 0, err
	}
	return shard.Of(customer, n), nil
}

// waitShardCount is the cluster's shard count once a prober has learned
// it, waiting up to within.
func (p *pool) waitShardCount(ctx context.Context, within time.Duration) (uint32, error) {
	deadline := time.Now().Add(within)
	for p.shards.Load() == 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the cluster's shard count is not known after %v", within)
		}
		p.pokeAll()
		if !wait.Sleep(ctx, 20*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return p.shards.Load(), nil
}

// metaShard names the meta group's leader where a shard is asked for:
// the leader of admin calls.
const metaShard = ^uint32(0)

// writerOf is the leader of shard sh (or of the meta group), if known and
// healthy; none while the shard count is not known, so that no order
// goes by a wrong count.
func (p *pool) writerOf(sh uint32) *backend {
	if sh == metaShard {
		return p.writer()
	}
	if p.shards.Load() == 0 {
		return nil
	}
	if p.shards.Load() == 1 {
		return p.writer()
	}
	p.mu.Lock()
	l := p.shardLeaders[sh]
	p.mu.Unlock()
	if l != nil && l.usable() != nil {
		return l
	}
	return nil
}

// hintShard follows a NotLeader answer of shard sh (see hint).
func (p *pool) hintShard(from *backend, sh uint32, leaderAddr string) {
	if sh == metaShard || p.shards.Load() <= 1 {
		p.hint(from, leaderAddr)
		return
	}
	p.mu.Lock()
	if p.shardLeaders[sh] == from {
		delete(p.shardLeaders, sh)
	}
	to := p.backendAt(leaderAddr)
	if to != nil && to != from {
		p.shardLeaders[sh] = to
	}
	p.mu.Unlock()
	if to == nil {
		p.pokeAll()
	}
}

// backendAt is the backend at addr; nil if none. p.mu held or not: the
// list is copy on write.
func (p *pool) backendAt(addr string) *backend {
	for _, b := range p.list() {
		if b.addr == addr {
			return b
		}
	}
	return nil
}

// forgetShardLeader drops b as the leader of any shard (it stopped
// answering, or left); p.mu held.
func (p *pool) forgetShardLeader(b *backend) {
	for sh, l := range p.shardLeaders {
		if l == b {
			delete(p.shardLeaders, sh)
		}
	}
}

// Shards is the cluster's shard count (api.Backend.Shards), once the
// probers have learned it: within ctx, or the retry timeout.
func (b *Balancer) Shards(ctx context.Context) (uint32, error) {
	return b.pool.waitShardCount(ctx, b.cfg.RetryTimeout)
}
