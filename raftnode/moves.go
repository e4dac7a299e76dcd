package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/wire"
)

// A replica moves in steps the shard's leader takes one at a time, each
// asked by an admin (orderctl shards move) and each safe to ask again
// (TiKV's and monstera's order): add the new node as a non-voter, let it
// catch up, promote it, hand leadership away from the old node if it
// leads, remove the old node. No step changes a quorum before the new
// replica holds the log. Nodes follow the shard map (adopt): a node the
// map names opens its replica, empty, and the leader's replication fills
// it; a node the map no longer names closes its replica and deletes its
// files.

// shardStatus answers ShardStatus: this node's replica of one shard.
func (n *Node) shardStatus(id uint32) (wire.Message, error) {
	if id >= n.count {
		return nil, refuse(ErrInvalid, "shard status: the cluster has %d shards, not shard %d", n.count, id)
	}
	r := n.replicas()[id]
	if r == nil {
		return wire.StatusInfo{ID: n.cfg.ID, Role: "none"}, nil
	}
	rf := r.raft()
	_, leader := rf.LeaderWithID()
	st := wire.StatusInfo{ID: n.cfg.ID, Role: strings.ToLower(rf.State().String()), LeaderID: string(leader),
		LeaderAddr: n.fsm.ClientAddr(string(leader)), Term: rf.CurrentTerm(), CommitIndex: rf.CommitIndex(),
		AppliedIndex: r.group.FSM().AppliedIndex(), LastIndex: rf.LastIndex()}
	for _, s := range r.committed().Servers {
		st.Members = append(st.Members, wire.Member{ID: string(s.ID), RaftAddr: string(s.Address),
			ClientAddr: n.fsm.ClientAddr(string(s.ID)), Voter: s.Suffrage == raft.Voter})
	}
	return st, nil
}

// shardMember takes one step of a move on the shard's leader.
func (n *Node) shardMember(ctx context.Context, m wire.ShardMember) (wire.Message, error) {
	if n.count == 1 {
		return nil, refuse(ErrInvalid, "shard member: a cluster of one shard moves no replica; its members are the cluster's (members add/remove)")
	}
	r, err := n.replicaByID(m.Shard)
	if err != nil {
		return nil, err
	}
	if r.raft().State() != raft.Leader {
		return nil, n.notLeaderOf(r)
	}
	if m.ID == "" {
		return nil, refuse(ErrInvalid, "shard member: a node id is required")
	}
	cur := r.raft().GetConfiguration()
	if err := r.group.Await(cur); err != nil {
		return nil, refuse(ErrUnavailable, "shard %d configuration: %v", m.Shard, err)
	}
	var have *raft.Server
	for _, s := range cur.Configuration().Servers {
		if string(s.ID) == m.ID {
			have = &s
		}
	}
	t := n.cfg.RequestTimeout
	g, rf := r.group, r.raft()
	switch m.Op {
	case wire.ShardAddNonvoter:
		if have != nil {
			return wire.OK{}, nil
		}
		if !n.isMember(m.ID) || m.RaftAddr == "" {
			return nil, refuse(ErrInvalid, "shard member: %q is not a member of the cluster, or no raft address given", m.ID)
		}
		err = g.Await(rf.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, t))
	case wire.ShardPromote:
		if have == nil {
			return nil, refuse(ErrInvalid, "shard member: %q holds no replica of shard %d", m.ID, m.Shard)
		}
		if have.Suffrage == raft.Voter {
			return wire.OK{}, nil
		}
		if err := n.caughtUp(ctx, r, m.ID); err != nil {
			return nil, err
		}
		err = g.Await(rf.AddVoter(have.ID, have.Address, 0, t))
	case wire.ShardStepDown:
		if m.ID != n.cfg.ID {
			return wire.OK{}, nil // another node leads: nothing to hand over
		}
		err = g.Await(rf.LeadershipTransfer())
	case wire.ShardLeadTo:
		if m.ID == n.cfg.ID {
			return wire.OK{}, nil // it leads already
		}
		if have == nil || have.Suffrage != raft.Voter {
			return nil, refuse(ErrInvalid, "shard member: %q holds no voting replica of shard %d", m.ID, m.Shard)
		}
		err = g.Await(rf.LeadershipTransferToServer(have.ID, have.Address))
	case wire.ShardRemove:
		if have == nil {
			return wire.OK{}, nil
		}
		if m.ID == n.cfg.ID {
			return nil, refuse(ErrInvalid, "shard member: %s leads shard %d: step it down first", m.ID, m.Shard)
		}
		err = g.Await(rf.RemoveServer(have.ID, 0, t))
	default:
		return nil, refuse(ErrInvalid, "shard member: unknown step %d", m.Op)
	}
	n.log.Info("shard member", "shard", m.Shard, "step", m.Op, "node", m.ID, "error", err)
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, n.notLeaderOf(r)
		}
		return nil, refuse(ErrUnavailable, "shard %d: %v", m.Shard, err)
	}
	return wire.OK{}, nil
}

// caughtUp refuses to promote a non-voter whose replica has not applied
// what this leader had committed when asked: a voter that lacks the log
// could make a quorum with a minority that lacks it too.
func (n *Node) caughtUp(ctx context.Context, r *replica, id string) error {
	want := r.raft().CommitIndex()
	var addr string
	for _, m := range n.members() {
		if m.ID == id {
			addr = m.RaftAddr
		}
	}
	c, err := n.peers.Get(ctx, id, addr)
	if err != nil {
		return refuse(ErrUnavailable, "promote %s: reach it: %v", id, err)
	}
	st, err := wire.CallAs[wire.StatusInfo](ctx, c, wire.ShardStatus{Shard: r.shard}, 0)
	if err != nil {
		return refuse(ErrUnavailable, "promote %s: its status: %v", id, err)
	}
	if st.AppliedIndex < want {
		return refuse(ErrUnavailable, "promote %s: it has applied shard %d to index %d of %d: not caught up yet", id, r.shard, st.AppliedIndex, want)
	}
	return nil
}

// adoptPeriod is how often a node compares the replicas it holds with the
// shard map.
const adoptPeriod = 500 * time.Millisecond

// adoptShards opens a replica of each shard the map names this node in
// and closes each it has been removed from (removedFrom).
func (n *Node) adoptShards() {
	if n.count == 1 {
		return
	}
	for _, s := range n.fsm.ShardMap() {
		if s.ID >= n.count {
			continue
		}
		named := false
		for _, rep := range s.Replicas {
			named = named || rep.ID == n.cfg.ID
		}
		r := n.replicas()[s.ID]
		switch {
		case named && r == nil:
			if err := n.hostShard(s.ID); err != nil {
				n.log.Warn("cannot open a replica the shard map names", "shard", s.ID, "error", err)
			}
		case !named && r != nil && n.removedFrom(r, s):
			if err := n.dropShard(r, s); err != nil {
				n.log.Warn("cannot close a replica the shard map dropped", "shard", s.ID, "error", err)
			}
		}
	}
}

// removedFrom says whether this node's replica r is out of its shard,
// which the map s (naming it no more) says: by an epoch newer than the
// replica's own, or by the replica's own committed configuration, which
// a removed replica may have applied before its leader stopped sending.
func (n *Node) removedFrom(r *replica, s fsm.SetShard) bool {
	c := r.committed()
	if s.Epoch > c.Index {
		return true
	}
	return c.Index > 0 && !slices.ContainsFunc(c.Servers, func(srv raft.Server) bool { return string(srv.ID) == n.cfg.ID })
}

// hostShard opens an empty (or kept) replica of shard id: the shard's
// leader fills it.
func (n *Node) hostShard(id uint32) error {
	n.shardsMu.Lock()
	defer n.shardsMu.Unlock()
	cur := n.replicas()
	if cur[id] != nil {
		return nil
	}
	r, err := n.openReplica(id, n.groups, n.adv, true)
	if err != nil {
		return err
	}
	next := append([]*replica(nil), cur...)
	next[id] = r
	n.shards.Store(&next)
	n.log.Info("opened a replica the shard map names", "shard", id)
	return nil
}

// dropShard closes a replica the map no longer names and deletes its
// files (removeReplicaFiles).
func (n *Node) dropShard(r *replica, s fsm.SetShard) error {
	n.shardsMu.Lock()
	defer n.shardsMu.Unlock()
	cur := n.replicas()
	if cur[s.ID] != r {
		return nil
	}
	next := append([]*replica(nil), cur...)
	next[s.ID] = nil
	n.shards.Store(&next)
	n.groups.Remove(r.gid)
	err := r.close()
	if rerr := removeReplicaFiles(shardDir(n.cfg.DataDir, s.ID), s.Epoch); err == nil {
		err = rerr
	}
	n.log.Info("closed a replica the shard map dropped and deleted its files", "shard", s.ID, "epoch", s.Epoch, "error", err)
	return err
}

// droppedSuffix marks the dir of a dropped replica on its way out.
const droppedSuffix = ".dropped-"

// removeReplicaFiles moves a dropped replica's dir out of the shard's
// place in one rename (a replica opened there later starts empty, never
// from half-deleted files), then deletes it, as TiKV destroys a removed
// peer's data: the shard's replicas hold all of it. A node that kept
// every replica moved away from it filled its disk in a 30-minute chaos
// run of moves back and forth.
func removeReplicaFiles(dir string, epoch uint64) error {
	aside := fmt.Sprintf("%s%s%d", dir, droppedSuffix, epoch)
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("remove dropped replica %s: %w", aside, err)
	}
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("move dropped replica %s aside: %w", dir, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("remove dropped replica %s: %w", aside, err)
	}
	return nil
}

// sweepDropped deletes what an earlier run left of dropped replicas: a
// crash between removeReplicaFiles' rename and its removal, or a release
// that kept them aside.
func sweepDropped(dataDir string, log hclog.Logger) error {
	left, err := filepath.Glob(filepath.Join(dataDir, "shards", "*"+droppedSuffix+"*"))
	if err != nil {
		return fmt.Errorf("find dropped replicas: %w", err)
	}
	for _, dir := range left {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove dropped replica %s: %w", dir, err)
		}
		log.Info("deleted the files of a replica dropped before", "dir", dir)
	}
	return nil
}
