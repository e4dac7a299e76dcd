package raftnode

import (
	"errors"

	"orderly/group"
	"orderly/wire"
)

// wireError maps the group's errors to the protocol's answers, at the
// edge where the node answers a client. An error that is already an
// answer (a leader's, relayed) stays as it is; one the group does not
// name is an unknown outcome, never a sure refusal.
// r is the replica whose group answered err.
func (n *Node) wireError(r *replica, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := wire.CodeOf(err); ok {
		return err
	}
	switch {
	case errors.Is(err, group.ErrNotLeader):
		return n.notLeaderOf(r)
	case errors.Is(err, group.ErrBusy):
		return wire.Errorf(wire.CodeOverloaded, "node %s: %v", n.cfg.ID, err)
	case errors.Is(err, group.ErrNotProposed), errors.Is(err, group.ErrUnavailable):
		return wire.Errorf(wire.CodeUnavailable, "node %s: %v", n.cfg.ID, err)
	}
	return wire.Errorf(wire.CodeTimeout, "node %s: %v", n.cfg.ID, err)
}

// notLeader is the NotLeader answer of the meta group (membership,
// alarms, backups), naming its leader's client address.
func (n *Node) notLeader() *wire.Error { return n.notLeaderOf(n.meta) }

// notLeaderOf is the NotLeader answer of r's shard, naming its leader's
// client address.
func (n *Node) notLeaderOf(r *replica) *wire.Error {
	_, id := r.raft().LeaderWithID()
	var e *wire.Error
	if r.meta {
		e = wire.Errorf(wire.CodeNotLeader, "node %s is not the leader (leader %q)", n.cfg.ID, id)
	} else {
		e = wire.Errorf(wire.CodeNotLeader, "node %s does not lead shard %d (leader %q)", n.cfg.ID, r.shard, id)
	}
	if id != "" {
		e.LeaderAddr = n.fsm.ClientAddr(string(id))
	}
	return e
}
