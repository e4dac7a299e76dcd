package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/group"
	"orderly/peernet"
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

// replica is this node's replica of one shard.
type replica struct {
	shard uint32
	// group runs once started is closed; the Raft port's streams may come
	// before (rules wait on started).
	group   *group.Group
	started chan struct{}
	running atomic.Pointer[group.Group]
	db      logStore // shard 0's is the node's (n.db), closed by the node
	snaps   raft.SnapshotStore
	trans   *peernet.Transport
}

// epoch is the index of the latest configuration of the shard this
// replica has applied: it grows with every change of the shard's
// replicas (hashicorp/raft does not say which index its configuration
// came from, so it is the FSM's, or the latest snapshot's).
func (r *replica) epoch() uint64 {
	e := r.group.FSM().ConfigIndex()
	if metas, err := r.snaps.List(); err == nil && len(metas) > 0 {
		e = max(e, metas[0].ConfigurationIndex)
	}
	return e
}

func (r *replica) raft() *raft.Raft { return r.group.Raft() }

// latestConfiguration is peernet.Rules.Config for the replica's group.
func (r *replica) latestConfiguration(ctx context.Context) (raft.Configuration, error) {
	select {
	case <-r.started:
	case <-ctx.Done():
		return raft.Configuration{}, errors.New("node closing")
	}
	g := r.running.Load()
	f := g.Raft().GetConfiguration()
	if err := g.Await(f); err != nil {
		return raft.Configuration{}, fmt.Errorf("raft configuration of shard %d: %w", r.shard, err)
	}
	return f.Configuration(), nil
}

// followedLeader is peernet.Rules.Leader for the replica's group.
func (r *replica) followedLeader() (id, addr string, term uint64) {
	g := r.running.Load()
	if g == nil {
		return "", "", 0
	}
	a, i := g.Raft().LeaderWithID()
	return string(i), string(a), g.Raft().CurrentTerm()
}

// openReplica opens shard id's stores under shards/<id>/ and starts its
// group on the Raft port as group id.
func (n *Node) openReplica(id uint32, groups *peernet.Groups, adv net.Addr) (*replica, error) {
	cfg := n.cfg
	dir := filepath.Join(cfg.DataDir, "shards", strconv.FormatUint(uint64(id), 10))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create shard dir %s: %w", dir, err)
	}
	log := n.log.With("shard", id)
	db, _, err := openLogStore(dir, n.storeKind, log.Named("wal"))
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	logs, err := raft.NewLogCache(4096, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shard %d log cache: %w", id, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, log.Named("snapshots"))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	r := &replica{shard: id, db: db, snaps: snaps, started: make(chan struct{})}
	ctx := n.routines.Context()
	// No Vouched: a sender must be in the shard's own configuration (or,
	// while this replica knows none, among --peers).
	r.trans = peernet.NewTransport(peernet.NewDialer(cfg.TLS, adv, peernet.GroupID(id)),
		peernet.Rules{Config: func() (raft.Configuration, error) { return r.latestConfiguration(ctx) },
			Leader: r.followedLeader, RefuseVotes: n.gate.refuses, Seeds: seedsOf(cfg.Peers)},
		log.Named("transport"))
	groups.Add(peernet.GroupID(id), r.trans)
	g, err := group.New(group.Config{
		ID: cfg.ID, Logger: log, RequestTimeout: cfg.RequestTimeout, Transport: r.trans,
		Timing: n.timing(),
		Stores: group.Stores{Logs: logs, Stable: db, Snapshots: snaps},
		FSM:    fsm.Options{Logger: log.Named("fsm"), Fatal: n.stopForUpgrade},
		AskLeader: func(ctx context.Context) (uint64, error) {
			return n.askLeaderReadIndex(ctx, r)
		},
	})
	if err != nil {
		groups.Remove(peernet.GroupID(id))
		r.trans.Close()
		db.Close()
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	r.group = g
	r.running.Store(g)
	close(r.started)
	return r, nil
}

// close stops the replica's group (which closes its transport) and, but
// for shard 0's, its log store.
func (r *replica) close() error {
	err := r.group.Close()
	if r.shard != 0 {
		if cerr := r.db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close shard %d log store: %w", r.shard, cerr)
		}
	}
	return err
}

// shardCount is the cluster's shard count.
func (n *Node) shardCount() uint32 { return uint32(len(n.replicas)) }

// replicaOf is this node's replica of customer's shard.
func (n *Node) replicaOf(customer int32) *replica {
	return n.replicas[shard.Of(customer, n.shardCount())]
}

// replicaByID is this node's replica of shard id, or WrongShard.
func (n *Node) replicaByID(id uint32) (*replica, error) {
	if id >= n.shardCount() {
		return nil, &wire.Error{Code: wire.CodeWrongShard, Message: fmt.Sprintf("node %s holds no replica of shard %d (the cluster has %d)", n.cfg.ID, id, n.shardCount())}
	}
	return n.replicas[id], nil
}

// shardMap answers Shards: each shard as this node knows it.
func (n *Node) shardMap() wire.ShardMap {
	m := wire.ShardMap{Shards: make([]wire.ShardInfo, 0, len(n.replicas))}
	for _, r := range n.replicas {
		lo, hi := shard.Range(r.shard, n.shardCount())
		s := wire.ShardInfo{ID: r.shard, SlotLo: lo, SlotHi: hi}
		s.Epoch = r.epoch()
		f := r.raft().GetConfiguration()
		if r.group.Await(f) == nil {
			for _, srv := range f.Configuration().Servers {
				s.Replicas = append(s.Replicas, wire.Replica{ID: string(srv.ID), Voter: srv.Suffrage == raft.Voter})
			}
		}
		if _, id := r.raft().LeaderWithID(); id != "" {
			s.Leader, s.LeaderAddr = string(id), n.fsm.ClientAddr(string(id))
		}
		m.Shards = append(m.Shards, s)
	}
	return m
}

// ShardOf is the shard of customer (api.Backend.ShardOf).
func (n *Node) ShardOf(customer int32) uint32 { return shard.Of(customer, n.shardCount()) }
