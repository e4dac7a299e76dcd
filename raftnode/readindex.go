package raftnode

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"

	"orderly/wire"
)

// leaderReadIndex is one ReadIndex round on the leader (Ongaro's thesis
// §6.4): once an entry of its term is committed, it takes its commit
// index, then confirms with a quorum that it still leads. The commit
// index, not the applied one: a follower may already have applied an
// entry that this leader's FSM has not (a stalled or busy FSM), and a read
// here must not go back in time behind a read there. waitApplied copes
// with entries the FSM never sees.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	for !n.isReadyLeader() {
		if n.raft.State() != raft.Leader {
			return 0, n.notLeader()
		}
		select { // elected, but the term's barrier is not applied yet
		case <-n.readyCh:
		case <-ctx.Done():
			return 0, wire.Errorf(wire.CodeUnavailable, "new leader not ready for reads")
		}
	}
	idx := n.raft.CommitIndex()
	// Never a lease: a node that only believes it leads must not answer.
	if err := n.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, n.notLeader()
		}
		return 0, wire.Errorf(wire.CodeUnavailable, "verify leadership: %v", err)
	}
	return idx, nil
}

// askLeaderReadIndex is one ReadIndex round on a follower: a ReadIndex
// request to the leader over a long-lived connection.
func (n *Node) askLeaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	id, addr := n.leaderClientAddr()
	if addr == "" {
		return 0, wire.Errorf(wire.CodeUnavailable, "no leader known (leader id %q)", id)
	}
	c, err := n.peers.get(ctx, addr)
	if err != nil {
		return 0, wire.Errorf(wire.CodeUnavailable, "reach leader %s: %v", id, err)
	}
	idx, err := c.ReadIndex(ctx)
	if err != nil {
		if _, ok := wire.CodeOf(err); ok {
			return 0, err
		}
		return 0, wire.Errorf(wire.CodeUnavailable, "read index from leader %s: %v", id, err)
	}
	return idx, nil
}

// linearizableIndex returns an index a linearizable read must wait for.
func (n *Node) linearizableIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() == raft.Leader {
		return n.localIndex.Do(ctx)
	}
	return n.remoteIndex.Do(ctx)
}

// notLeader is the NotLeader answer, naming the leader's client address.
func (n *Node) notLeader() *wire.Error {
	id, addr := n.leaderClientAddr()
	e := wire.Errorf(wire.CodeNotLeader, "node %s is not the leader (leader %q)", n.cfg.ID, id)
	e.LeaderAddr = addr
	return e
}
