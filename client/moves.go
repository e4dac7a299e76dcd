package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"orderly/internal/wait"
	"orderly/wire"
)

// MoveShard moves shard id's replica from one node to another in the
// steps raftnode takes (raftnode/moves.go): add to as a non-voter, wait
// until it has caught up and promote it, hand leadership away from from
// if it leads, remove from. It looks at the shard map before each step
// and skips what is done, so a move cut off in the middle (its admin
// gone, a node killed) is finished by running it again. say reports each
// step.
func (c *Client) MoveShard(ctx context.Context, id uint32, from, to string, say func(string)) error {
	if from == to {
		return errors.New("move shard: --from and --to name the same node")
	}
	ms, err := c.Members(ctx)
	if err != nil {
		return fmt.Errorf("move shard: members: %w", err)
	}
	var toAddr string
	for _, m := range ms {
		if m.ID == to {
			toAddr = m.RaftAddr
		}
	}
	if toAddr == "" {
		return fmt.Errorf("move shard: %q is not a member (orderctl members add it first)", to)
	}
	for {
		s, err := c.shardInfo(ctx, id)
		if err != nil {
			return err
		}
		hasFrom, hasTo, toVotes := false, false, false
		for _, r := range s.Replicas {
			hasFrom = hasFrom || r.ID == from
			if r.ID == to {
				hasTo, toVotes = true, r.Voter
			}
		}
		var step wire.ShardMember
		switch {
		case !hasFrom && hasTo && toVotes:
			say(fmt.Sprintf("shard %d: %s holds a voting replica and %s none: moved", id, to, from))
			return nil
		case !hasTo && !hasFrom:
			return fmt.Errorf("move shard %d: neither %s nor %s holds a replica of it", id, from, to)
		case !hasTo:
			step = wire.ShardMember{Shard: id, Op: wire.ShardAddNonvoter, ID: to, RaftAddr: toAddr}
			say(fmt.Sprintf("shard %d: adding %s as a non-voter", id, to))
		case !toVotes:
			step = wire.ShardMember{Shard: id, Op: wire.ShardPromote, ID: to}
			say(fmt.Sprintf("shard %d: promoting %s once it has caught up", id, to))
		case s.Leader == from:
			step = wire.ShardMember{Shard: id, Op: wire.ShardStepDown, ID: from}
			say(fmt.Sprintf("shard %d: %s leads it: handing leadership over", id, from))
		default:
			step = wire.ShardMember{Shard: id, Op: wire.ShardRemove, ID: from}
			say(fmt.Sprintf("shard %d: removing %s", id, from))
		}
		if err := c.shardStep(ctx, step); err != nil {
			return err
		}
	}
}

// shardInfo is shard id as the map says.
func (c *Client) shardInfo(ctx context.Context, id uint32) (wire.ShardInfo, error) {
	m, err := c.ShardMap(ctx)
	if err != nil {
		return wire.ShardInfo{}, fmt.Errorf("move shard: the shard map: %w", err)
	}
	if int(id) >= len(m.Shards) {
		return wire.ShardInfo{}, fmt.Errorf("move shard: the cluster has %d shards, not shard %d", len(m.Shards), id)
	}
	return m.Shards[id], nil
}

// shardStep asks the shard's leader for one step until it is taken: a
// non-voter still catching up, or a leadership in transit, is asked
// again. Then it waits for the map to show the step, which the shard's
// leader publishes a moment after.
func (c *Client) shardStep(ctx context.Context, step wire.ShardMember) error {
	for {
		_, err := doAs[wire.OK](ctx, c, c.toLeaderOf(step.Shard), step)
		if err == nil {
			break
		}
		if code, ok := wire.CodeOf(err); !ok || code != wire.CodeUnavailable {
			return fmt.Errorf("move shard %d: %w", step.Shard, err)
		}
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("move shard %d: %w (last: %v)", step.Shard, ctx.Err(), err)
		}
	}
	for {
		s, err := c.shardInfo(ctx, step.Shard)
		if err != nil {
			return err
		}
		if stepShown(s, step) {
			return nil
		}
		if !wait.Sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("move shard %d: the map does not show the step yet: %w", step.Shard, ctx.Err())
		}
	}
}

// stepShown says whether the map shows step taken.
func stepShown(s wire.ShardInfo, step wire.ShardMember) bool {
	var have *wire.Replica
	for i := range s.Replicas {
		if s.Replicas[i].ID == step.ID {
			have = &s.Replicas[i]
		}
	}
	switch step.Op {
	case wire.ShardAddNonvoter:
		return have != nil
	case wire.ShardPromote:
		return have != nil && have.Voter
	case wire.ShardStepDown:
		return s.Leader != "" && s.Leader != step.ID
	case wire.ShardLeadTo:
		return s.Leader == step.ID
	case wire.ShardRemove:
		return have == nil
	}
	return true
}

// BalanceShards spreads the shards' replicas, then their leaders, evenly
// over the members: while one node holds two more replicas (or leads two
// more shards) than another, a replica moves (MoveShard) or a leadership
// is handed over from the first to the second. CockroachDB balances
// leases per store so that no node "slurps up" every lease; a restart
// leaves Raft's leaders wherever the elections fell. say reports each
// change.
func (c *Client) BalanceShards(ctx context.Context, say func(string)) error {
	ms, err := c.Members(ctx)
	if err != nil {
		return fmt.Errorf("balance: members: %w", err)
	}
	for moves := 0; ; moves++ {
		m, err := c.ShardMap(ctx)
		if err != nil {
			return fmt.Errorf("balance: the shard map: %w", err)
		}
		if len(m.Shards) < 2 {
			say("one shard: nothing to balance")
			return nil
		}
		if moves > 4*len(m.Shards) {
			return errors.New("balance: still uneven after a move per shard four times over")
		}
		held, led := map[string][]uint32{}, map[string][]uint32{}
		for _, mb := range ms {
			held[mb.ID], led[mb.ID] = nil, nil
		}
		for _, s := range m.Shards {
			for _, r := range s.Replicas {
				held[r.ID] = append(held[r.ID], s.ID)
			}
			if s.Leader != "" {
				led[s.Leader] = append(led[s.Leader], s.ID)
			}
		}
		if most, least := extremes(held); len(held[most])-len(held[least]) > 1 {
			for _, id := range held[most] {
				if !slices.Contains(held[least], id) {
					if err := c.MoveShard(ctx, id, most, least, say); err != nil {
						return err
					}
					break
				}
			}
			continue
		}
		most, least := extremes(led)
		if len(led[most])-len(led[least]) <= 1 {
			say("balanced: replicas and leaders within one of each other on every node")
			return nil
		}
		moved := false
		for _, id := range led[most] {
			if slices.Contains(held[least], id) {
				say(fmt.Sprintf("shard %d: handing leadership from %s to %s", id, most, least))
				if err := c.shardStep(ctx, wire.ShardMember{Shard: id, Op: wire.ShardLeadTo, ID: least}); err != nil {
					return err
				}
				moved = true
				break
			}
		}
		if !moved {
			say(fmt.Sprintf("leaders: %s leads %d shards and %s %d, but %s holds none of those: balanced as far as the replicas allow", most, len(led[most]), least, len(led[least]), least))
			return nil
		}
	}
}

// extremes are the ids with the longest and the shortest lists (ties to
// the smaller id, so that a run is repeatable).
func extremes(by map[string][]uint32) (most, least string) {
	ids := slices.Sorted(maps.Keys(by))
	most, least = ids[0], ids[0]
	for _, id := range ids {
		if len(by[id]) > len(by[most]) {
			most = id
		}
		if len(by[id]) < len(by[least]) {
			least = id
		}
	}
	return most, least
}
