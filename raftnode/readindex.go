package raftnode

import (
	"context"

	"orderly/wire"
)

// askLeaderReadIndex is the group's way to its leader's read index
// (group.Config.AskLeader): a ReadIndex request over a long-lived
// connection to the leader's client port.
func (n *Node) askLeaderReadIndex(ctx context.Context) (uint64, error) {
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

// notLeader is the NotLeader answer, naming the leader's client address.
func (n *Node) notLeader() *wire.Error {
	id, addr := n.leaderClientAddr()
	e := wire.Errorf(wire.CodeNotLeader, "node %s is not the leader (leader %q)", n.cfg.ID, id)
	e.LeaderAddr = addr
	return e
}
