package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/shard"
	"orderly/wire"
)

// A node holds a replica of every shard of the cluster. Shard 0 is the
// node's first group, on the data dir's own stores: it also holds what
// the cluster knows of its members (client addresses, command versions,
// alarms), so a data dir of a single-group release opens as shard 0 of a
// cluster of one shard. Shard i > 0 lives under shards/<i>/ with its own
// log, stable store and snapshots, and speaks on the Raft port as group i.
//
// The shard map is the shards' own Raft state: a shard's replicas are its
// group's configuration, its epoch that configuration's index (it grows
// with every change of the replicas, as a TiKV region's conf_ver does),
// its customers a fixed function of the shard count (package shard),
// which the data dir records when the cluster is created.

// shardsFile records the shard count the cluster was created with.
const shardsFile = "orderly-shards.json"

type shardsRecord struct {
	Shards uint32 `json:"shards"`
}

// settleShardCount is the data dir's shard count: the one it records; for
// a data dir without the record, 1 if it holds a Raft log (a single-group
// release's), else want (1 if 0), recorded. want other than 0 must match.
func settleShardCount(dir string, want uint32, hasLog bool) (uint32, error) {
	path := filepath.Join(dir, shardsFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var rec shardsRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return 0, fmt.Errorf("parse %s: %w", path, err)
		}
		if err := shard.Check(rec.Shards); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if want != 0 && want != rec.Shards {
			return 0, fmt.Errorf("data dir %s holds a cluster of %d shards, --shards says %d: the count is fixed when a cluster is created",
				dir, rec.Shards, want)
		}
		return rec.Shards, nil
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	count := max(want, 1)
	if hasLog {
		if want > 1 {
			return 0, fmt.Errorf("data dir %s holds a cluster of one group (an earlier release's), --shards says %d: the count is fixed when a cluster is created",
				dir, want)
		}
		count = 1
	}
	b, err = json.Marshal(shardsRecord{Shards: count})
	if err != nil {
		return 0, err
	}
	if err := writeFileSync(path+".tmp", append(b, '\n')); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return 0, fmt.Errorf("install %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return 0, fmt.Errorf("install %s: %w", path, err)
	}
	return count, nil
}

// shardCountOf reads a data dir's recorded shard count (1 without the
// record), for the offline tools.
func shardCountOf(dir string) (uint32, error) {
	b, err := os.ReadFile(filepath.Join(dir, shardsFile))
	if errors.Is(err, os.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", shardsFile, err)
	}
	var rec shardsRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return 0, fmt.Errorf("parse %s: %w", shardsFile, err)
	}
	return rec.Shards, nil
}

// shardCount is the cluster's shard count.
func (n *Node) shardCount() uint32 { return n.count }

// replicas are this node's replicas of the shards, by shard id, nil
// where it holds none: do not modify.
func (n *Node) replicas() []*replica {
	if p := n.shards.Load(); p != nil {
		return *p
	}
	return nil
}

// dataReplicas are this node's replicas of shards (of a cluster of one
// shard: the meta group's).
func (n *Node) dataReplicas() []*replica {
	var out []*replica
	for _, r := range n.replicas() {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// placement is shard id's replicas when the cluster is created: --replicas
// of the sorted --peers, from the id-th on (the same list on every node),
// so that each node holds about as many shards as the others.
func (n *Node) placement(id uint32) []raft.Server {
	return placementOf(n.cfg.Peers, n.cfg.Replicas, id)
}

// placementOf is shard id's replicas in a new cluster of peers, replicas
// per shard.
func placementOf(peers []Peer, replicas int, id uint32) []raft.Server {
	peers = slices.SortedFunc(slices.Values(peers), func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	want := min(replicas, len(peers))
	var out []raft.Server
	for k := range want {
		p := peers[(int(id)+k)%len(peers)]
		out = append(out, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
	}
	return out
}

// shardsToHost are the shards this node opens a replica of: on a cluster's
// creation those its placement names; after, those it has a dir of.
func (n *Node) shardsToHost(existing bool) ([]uint32, error) {
	var ids []uint32
	if !existing && len(n.cfg.Peers) > 0 {
		for id := range n.count {
			if slices.ContainsFunc(n.placement(id), func(s raft.Server) bool { return string(s.ID) == n.cfg.ID }) {
				ids = append(ids, id)
			}
		}
		return ids, nil
	}
	for id := range n.count {
		if _, err := os.Stat(shardDir(n.cfg.DataDir, id)); err == nil {
			ids = append(ids, id)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("shard %d: %w", id, err)
		}
	}
	return ids, nil
}

// replicaOf is this node's replica of customer's shard, and the shard;
// nil if it holds none.
func (n *Node) replicaOf(customer int32) (*replica, uint32) {
	id := shard.Of(customer, n.count)
	return n.replicas()[id], id
}

// replicaByID is this node's replica of shard id, or WrongShard.
func (n *Node) replicaByID(id uint32) (*replica, error) {
	if id >= n.count {
		return nil, refuse(ErrWrongShard, "the cluster has %d shards, not shard %d", n.count, id)
	}
	if r := n.replicas()[id]; r != nil {
		return r, nil
	}
	return nil, n.wrongShard(id)
}

// wrongShard is the answer for shard id on a node that holds no replica
// of it: the epoch and leader the shard map knows.
func (n *Node) wrongShard(id uint32) error {
	e := &refusal{kind: ErrWrongShard, msg: fmt.Sprintf("node %s holds no replica of shard %d", n.cfg.ID, id)}
	if s, ok := n.fsm.Shard(id); ok {
		e.epoch, e.leaderAddr = s.Epoch, n.fsm.ClientAddr(s.Leader)
	}
	return e
}

// shardMap answers Shards: the shard map as the meta group has it, or,
// for a shard it has nothing of yet, as this node's replica knows it.
func (n *Node) shardMap() wire.ShardMap {
	m := wire.ShardMap{Shards: make([]wire.ShardInfo, 0, n.count)}
	for id := range n.count {
		lo, hi := shard.Range(id, n.count)
		info := wire.ShardInfo{ID: id, SlotLo: lo, SlotHi: hi}
		s, ok := n.fsm.Shard(id) // none in a cluster of one shard
		if r := n.replicas()[id]; !ok && r != nil {
			s = r.describe(id)
		}
		info.Epoch, info.Leader, info.Replicas = s.Epoch, s.Leader, wireReplicas(s.Replicas)
		if s.Leader != "" {
			info.LeaderAddr = n.fsm.ClientAddr(s.Leader)
		}
		m.Shards = append(m.Shards, info)
	}
	return m
}

func wireReplicas(rs []fsm.ShardReplica) []wire.Replica {
	var out []wire.Replica
	for _, r := range rs {
		out = append(out, wire.Replica{ID: r.ID, Voter: r.Voter})
	}
	return out
}

func fsmReplicas(rs []wire.Replica) []fsm.ShardReplica {
	var out []fsm.ShardReplica
	for _, r := range rs {
		out = append(out, fsm.ShardReplica{ID: r.ID, Voter: r.Voter})
	}
	return out
}

// applySetShard records s in the map, on the meta group's leader.
func (n *Node) applySetShard(s fsm.SetShard) error {
	cmd := fsm.AppendSetShard(nil, s)
	return n.applyVersioned(cmd, fsm.VersionOf(cmd))
}

// describe is shard id as this replica's group says: its committed
// configuration, what its leader publishes.
func (r *replica) describe(id uint32) fsm.SetShard {
	c := r.committed()
	s := fsm.SetShard{ID: id, Epoch: c.Index, Term: r.raft().CurrentTerm()}
	for _, srv := range c.Servers {
		s.Replicas = append(s.Replicas, fsm.ShardReplica{ID: string(srv.ID), Voter: srv.Suffrage == raft.Voter})
	}
	_, leader := r.raft().LeaderWithID()
	s.Leader = string(leader)
	return s
}

// shardsPublishPeriod is how often a node compares the shards it leads
// with the map.
const shardsPublishPeriod = 250 * time.Millisecond

// publishShards records in the meta group each shard this node leads,
// whenever the map's entry differs from what the shard's group says.
func (n *Node) publishShards() {
	if n.count == 1 {
		return
	}
	for _, r := range n.dataReplicas() {
		if !r.group.IsReadyLeader() {
			continue
		}
		s := r.describe(r.shard)
		if have, ok := n.fsm.Shard(s.ID); ok && have.Same(s) {
			continue
		}
		if err := n.publishShard(s); err != nil {
			n.log.Debug("publish shard", "shard", s.ID, "error", err)
		}
	}
}

func (n *Node) publishShard(s fsm.SetShard) error {
	if n.raft.State() == raft.Leader {
		return n.applySetShard(s)
	}
	ctx, cancel := context.WithTimeout(n.routines.Context(), n.cfg.RequestTimeout)
	defer cancel()
	c, _, err := n.leaderPeer(ctx, n.meta)
	if err != nil {
		return err
	}
	return c.Admin(ctx, wire.PublishShard{Shard: wire.ShardInfo{ID: s.ID, Epoch: s.Epoch, Leader: s.Leader,
		Replicas: wireReplicas(s.Replicas)}, Term: s.Term})
}

// answerPublishShard records what a shard's leader published: on the
// meta group's leader only, and only what a node says of a shard it leads.
func (n *Node) answerPublishShard(from string, p wire.PublishShard) error {
	if n.count == 1 || p.Shard.ID >= n.count {
		return refuse(ErrInvalid, "publish shard %d: the cluster has %d shards", p.Shard.ID, n.count)
	}
	if from != "" && p.Shard.Leader != from {
		return refuse(ErrDenied, "node %q may publish only shards it leads, not as %q", from, p.Shard.Leader)
	}
	// Only a replica of the shard, as the map has it, speaks for it: a
	// member of the cluster that holds none could otherwise write a map
	// that sends the shard's clients to it or drops its replicas.
	if have, ok := n.fsm.Shard(p.Shard.ID); ok && from != "" &&
		!slices.ContainsFunc(have.Replicas, func(r fsm.ShardReplica) bool { return r.ID == from }) {
		return refuse(ErrDenied, "node %q holds no replica of shard %d: it may not publish it", from, p.Shard.ID)
	}
	if len(p.Shard.Replicas) > fsm.MaxShardReplicas {
		return refuse(ErrInvalid, "publish shard %d: %d replicas", p.Shard.ID, len(p.Shard.Replicas))
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	return n.applySetShard(fsm.SetShard{ID: p.Shard.ID, Epoch: p.Shard.Epoch, Term: p.Term, Leader: p.Shard.Leader,
		Replicas: fsmReplicas(p.Shard.Replicas)})
}

// ShardOf is the shard of customer.
func (n *Node) ShardOf(customer int32) uint32 { return shard.Of(customer, n.count) }

// Shards is the cluster's shard count (api.Backend.Shards).
func (n *Node) Shards(context.Context) (uint32, error) { return n.count, nil }

// shardLeaderPeer is the peer stream to the leader of shard id: the one
// this node's replica follows, or the one the shard map names.
func (n *Node) shardLeaderPeer(ctx context.Context, id uint32) (*wire.Conn, string, error) {
	if r := n.replicas()[id]; r != nil {
		return n.leaderPeer(ctx, r)
	}
	if s, ok := n.fsm.Shard(id); ok && s.Leader != "" {
		for _, m := range n.members() {
			if m.ID == s.Leader {
				c, err := n.peers.Get(ctx, m.ID, m.RaftAddr)
				if err != nil {
					return nil, m.ID, refuse(ErrUnavailable, "reach the leader %s of shard %d: %v", m.ID, id, err)
				}
				return c, m.ID, nil
			}
		}
	}
	return nil, "", refuse(ErrUnavailable, "no leader known of shard %d", id)
}
