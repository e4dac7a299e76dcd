package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/serve"
	"orderly/wire"
)

// Status describes this node: role, leader, Raft progress and members.
func (n *Node) Status() wire.StatusInfo {
	leaderID, leaderAddr := n.leaderClientAddr()
	return wire.StatusInfo{
		ID:           n.cfg.ID,
		Role:         strings.ToLower(n.raft.State().String()),
		LeaderID:     leaderID,
		LeaderAddr:   leaderAddr,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(),
		LastIndex:    n.raft.LastIndex(),
		Members:      n.members(),
		Stats:        n.stats(),
	}
}

// members joins the Raft configuration with the published client addresses.
func (n *Node) members() []wire.Member {
	f := n.raft.GetConfiguration()
	if n.group.Await(f) != nil {
		return nil
	}
	var out []wire.Member
	for _, s := range f.Configuration().Servers {
		out = append(out, wire.Member{ID: string(s.ID), RaftAddr: string(s.Address),
			ClientAddr: n.fsm.ClientAddr(string(s.ID)), Voter: s.Suffrage == raft.Voter})
	}
	return out
}

// admin runs a membership or leadership call. All of them need the leader.
// from is the caller; a node (a certificate with a name) may publish only
// its own id, and only a member's.
func (n *Node) admin(from serve.Caller, req wire.Message) (wire.Message, error) {
	if p, ok := req.(wire.Publish); ok {
		if from.Name != "" && p.ID != from.Name {
			return nil, refuse(ErrDenied, "publish: node %q may publish only its own id, not %q", from.Name, p.ID)
		}
		if n.raft.State() == raft.Leader && !n.isMember(p.ID) {
			return nil, refuse(ErrInvalid, "publish: %q is not a member", p.ID)
		}
	}
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	t := n.cfg.RequestTimeout
	var err error
	switch r := req.(type) {
	case wire.AddMember:
		if r.ID == "" || r.RaftAddr == "" {
			return nil, refuse(ErrInvalid, "add member: id and raft address are required")
		}
		if r.Voter {
			err = n.group.Await(n.raft.AddVoter(raft.ServerID(r.ID), raft.ServerAddress(r.RaftAddr), 0, t))
		} else {
			err = n.group.Await(n.raft.AddNonvoter(raft.ServerID(r.ID), raft.ServerAddress(r.RaftAddr), 0, t))
		}
		n.log.Info("add member", "id", r.ID, "raft", r.RaftAddr, "voter", r.Voter, "error", err)
	case wire.RemoveMember:
		if !n.isMember(r.ID) {
			return nil, refuse(ErrInvalid, "remove member: %q is not a member", r.ID)
		}
		err = n.group.Await(n.raft.RemoveServer(raft.ServerID(r.ID), 0, t))
		n.log.Info("remove member", "id", r.ID, "error", err)
	case wire.TransferLeader:
		err = n.transferLeader(r.ID)
	case wire.Publish:
		if r.ID == "" || r.ClientAddr == "" {
			return nil, refuse(ErrInvalid, "publish: id and client address are required")
		}
		// A claim above what this leader understands would open the version
		// gate for commands no leader of this build proposes: refuse it; the
		// node publishes again once an upgraded leader can vouch for it.
		if r.Version > fsm.Version {
			return nil, refuse(ErrInvalid, "publish: version %d is newer than this leader's %d", r.Version, fsm.Version)
		}
		err = n.applySetMember(r.ID, r.ClientAddr, max(r.Version, 1))
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, n.notLeader()
		}
		var ref *refusal
		if errors.As(err, &ref) {
			return nil, err // already says what it is (BadRequest: final)
		}
		return nil, refuse(ErrUnavailable, "%s: %v", req.Type(), err)
	}
	return wire.OK{}, nil
}

func (n *Node) isMember(id string) bool {
	for _, m := range n.members() {
		if m.ID == id {
			return true
		}
	}
	return false
}

func (n *Node) transferLeader(to string) error {
	if to == n.cfg.ID && n.raft.State() == raft.Leader {
		return refuse(ErrInvalid, "transfer leader: %s already leads", to)
	}
	if to == "" {
		return n.group.Await(n.raft.LeadershipTransfer())
	}
	for _, m := range n.members() {
		if m.ID == to {
			return n.group.Await(n.raft.LeadershipTransferToServer(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr)))
		}
	}
	return refuse(ErrInvalid, "transfer leader: %q is not a member", to)
}

// stats are status's counters: sessions, the client port's bounds and
// use, the log store's write failures.
func (n *Node) stats() []wire.Stat {
	open, refused := n.server.Conns()
	_, limits := n.fsm.Limits()
	st := []wire.Stat{{Name: "sessions", Value: uint64(n.fsm.Sessions())}, {Name: "sessions_max", Value: uint64(limits.MaxSessions)},
		{Name: "sessions_evicted", Value: n.fsm.Evicted()},
		{Name: "conns_open", Value: uint64(open)}, {Name: "conns_refused", Value: refused}}

	st = append(st, n.cfg.Bounds.Stats()...)
	st = append(st, n.store.stats()...)
	st = append(st, wire.Stat{Name: "log_store " + n.storeKind, Value: 1})
	floor, _ := n.feed.Position()
	st = append(st, wire.Stat{Name: "watchers", Value: uint64(n.watchers.Load())},
		wire.Stat{Name: "watch_oldest_index", Value: floor})
	st = append(st, n.alarms.stats()...)
	return st
}

// maxReadyLag is how far applying may trail the commit index on a ready
// node.
const maxReadyLag = 1000

// Ready says whether this node should get client traffic (/readyz): it
// knows a leader, holds no votes for a lost disk, has Raft state, and
// applies within maxReadyLag of the commit index; a leader has also seen
// its term's barrier, and its own disk has room (no alarm). The error
// says why not.
func (n *Node) Ready() error {
	if n.gate.closed.Load() {
		return fmt.Errorf("catching up after a lost disk: votes held")
	}
	if n.raft.CurrentTerm() == 0 {
		return fmt.Errorf("no Raft state yet: waiting to bootstrap or to be added")
	}
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return fmt.Errorf("no leader known")
	}
	if n.raft.State() == raft.Leader && !n.isReadyLeader() {
		return fmt.Errorf("new leader: waiting for its term's barrier")
	}
	if commit, applied := n.raft.CommitIndex(), n.fsm.AppliedIndex(); commit > applied+maxReadyLag {
		return fmt.Errorf("applying: %d committed entries behind", commit-applied)
	}
	if own := n.alarms.ownList(); len(own) > 0 {
		return fmt.Errorf("disk alarm: %s", own[0].Message)
	}
	return nil
}

// OrdersApplied counts the orders this replica applied since it started.
func (n *Node) OrdersApplied() uint64 {
	r, c, _ := n.ordersApplied()
	return r + c
}

// ShardMap is the shard map as this node knows it (the operator's page).
func (n *Node) ShardMap(context.Context) (wire.ShardMap, error) { return n.shardMap(), nil }

// ShardStatus is node's replica of shard, this node's own or asked over
// the peer connection (the operator's page).
func (n *Node) ShardStatus(ctx context.Context, node string, shard uint32) (wire.StatusInfo, error) {
	if node == n.cfg.ID {
		st, err := n.shardStatus(shard)
		if err != nil {
			return wire.StatusInfo{}, err
		}
		return st.(wire.StatusInfo), nil
	}
	for _, m := range n.members() {
		if m.ID == node {
			c, err := n.peers.Get(ctx, m.ID, m.RaftAddr)
			if err != nil {
				return wire.StatusInfo{}, err
			}
			return wire.CallAs[wire.StatusInfo](ctx, c, wire.ShardStatus{Shard: shard}, 0)
		}
	}
	return wire.StatusInfo{}, fmt.Errorf("%q is not a member", node)
}

// MemberStatuses is the status of every member, this node's own and the
// others' asked over the peer connections (the operator's page); a member
// that does not answer within ctx is listed with role "unreachable".
func (n *Node) MemberStatuses(ctx context.Context) []wire.StatusInfo {
	members := n.members()
	out := make([]wire.StatusInfo, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == n.cfg.ID {
			out[i] = n.Status()
			continue
		}
		out[i] = wire.StatusInfo{ID: m.ID, Role: "unreachable"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := n.peers.Get(ctx, m.ID, m.RaftAddr)
			if err != nil {
				return
			}
			if st, err := c.Status(ctx); err == nil {
				out[i] = st
			}
		}()
	}
	wg.Wait()
	return out
}
