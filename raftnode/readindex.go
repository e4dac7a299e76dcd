package raftnode

import (
	"context"

	"orderly/wire"
)

// askLeaderReadIndex is the group's way to its leader's read index
// (group.Config.AskLeader): a ReadIndex request on the peer stream to the
// leader.
func (n *Node) askLeaderReadIndex(ctx context.Context) (uint64, error) {
	c, id, err := n.leaderPeer(ctx)
	if err != nil {
		return 0, err
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

// notLeader is the NotLeader answer, naming the leader's client address.
func (n *Node) notLeader() *wire.Error {
	id, addr := n.leaderClientAddr()
	e := wire.Errorf(wire.CodeNotLeader, "node %s is not the leader (leader %q)", n.cfg.ID, id)
	e.LeaderAddr = addr
	return e
}
