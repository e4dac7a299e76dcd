package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"orderly/feed"
	"orderly/fsm"
	"orderly/group"
	"orderly/peernet"
	"orderly/wire"
)

// replica is this node's replica of a group: the meta group (group 0),
// or a shard's.
type replica struct {
	gid   peernet.GroupID
	shard uint32 // the shard it holds; of a sharded cluster's meta group: none (meta)
	meta  bool   // the meta group (group 0); of a cluster of one shard, also shard 0
	// group runs once started is closed; the Raft port's streams may come
	// before (rules wait on started).
	group   *group.Group
	started chan struct{}
	running atomic.Pointer[group.Group]
	db      logStore // the meta group's is the node's (n.db), closed by the node
	snaps   raft.SnapshotStore
	gate    *voteGate // of a shard's replica: no votes before an adopted one caught up
	trans   *peernet.Transport
	feed    *feed.Ring // the change feed of its orders (the meta group's is the node's)
}

// committed is the group's committed configuration as this replica has
// applied it, with its index: the shard's epoch, which grows with every
// change of its replicas. hashicorp/raft hands out only its latest
// configuration, maybe not committed, and not its index; so this is the
// FSM's last configuration entry, or the latest snapshot's configuration
// when the log before it is gone.
func (r *replica) committed() fsm.Configuration {
	c := r.group.FSM().Configuration()
	if c.Index > 0 {
		return c // applied after any snapshot this replica restored: the newer
	}
	if metas, err := r.snaps.List(); err == nil && len(metas) > 0 {
		c = fsm.Configuration{Index: metas[0].ConfigurationIndex, Servers: metas[0].Configuration.Servers}
	}
	return c
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
		return raft.Configuration{}, fmt.Errorf("raft configuration of group %d: %w", r.gid, err)
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

// shardDir is where a sharded cluster's node keeps its replica of shard id.
func shardDir(dataDir string, id uint32) string {
	return filepath.Join(dataDir, "shards", strconv.FormatUint(uint64(id), 10))
}

// shardGroup is the Raft group of shard id in a cluster of count shards:
// the meta group itself in a cluster of one, else its own group id+1.
func shardGroup(id, count uint32) peernet.GroupID {
	if count == 1 {
		return 0
	}
	return peernet.GroupID(id + 1)
}

// openReplica opens shard id's stores under shards/<id>/ and starts its
// group on the Raft port. adopted: an empty replica of a shard that
// exists (the map names this node: a move, or a lost disk), which must
// not vote before it has caught up (its own vote gate, as votegate.go's
// for the meta group).
func (n *Node) openReplica(id uint32, groups *peernet.Groups, adv net.Addr, adopted bool) (*replica, error) {
	cfg := n.cfg
	dir := shardDir(cfg.DataDir, id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create shard dir %s: %w", dir, err)
	}
	gid := shardGroup(id, n.count)
	log := n.log.With("shard", id)
	began := time.Now()
	db, _, err := openLogStore(dir, n.storeKind, log.Named("wal"))
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	// Its writes are timed and watched as the meta group's are: a slow or
	// full disk is the node's, whichever group writes to it.
	watched := &watchedLogStore{LogStore: db, log: log.Named("logstore"), appendSeconds: n.store.appendSeconds}
	logs, err := raft.NewLogCache(4096, watched)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shard %d log cache: %w", id, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, log.Named("snapshots"))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	gate, err := newVoteGate(dir, log.Named("votes"))
	if err == nil && adopted {
		err = gate.hold()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	r := &replica{gid: gid, shard: id, db: db, snaps: snaps, gate: gate, started: make(chan struct{}), feed: feed.New(cfg.WatchHistory, 0)}
	ctx := n.routines.Context()
	// A sender must be in the shard's own configuration, or, while this
	// replica knows none, among --peers, or named by a newer shard map.
	r.trans = peernet.NewTransport(peernet.NewDialer(cfg.TLS, adv, gid),
		peernet.Rules{Config: func() (raft.Configuration, error) { return r.latestConfiguration(ctx) },
			Leader: r.followedLeader, RefuseVotes: func() bool { return n.gate.refuses() || gate.refuses() },
			Vouched: n.shardVouched(r), Seeds: seedsOf(cfg.Peers)},
		log.Named("transport"))
	groups.Add(gid, r.trans)
	storeOpened := time.Now()
	g, err := group.New(group.Config{
		ID: cfg.ID, Logger: log, RequestTimeout: cfg.RequestTimeout, Transport: r.trans,
		Timing: n.timing(),
		Stores: group.Stores{Logs: logs, Stable: db, Snapshots: snaps},
		FSM:    fsm.Options{Logger: log.Named("fsm"), Fatal: n.stopForUpgrade, Changes: r.feed},
		AskLeader: func(ctx context.Context) (uint64, error) {
			return n.askLeaderReadIndex(ctx, r)
		},
	})
	if err != nil {
		groups.Remove(gid)
		r.trans.Close()
		db.Close()
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	// A restart's outage is the sum of these over the node's replicas:
	// worth seeing in the log.
	log.Info("opened replica", "log_store", storeOpened.Sub(began), "raft", time.Since(storeOpened))
	r.group = g
	r.running.Store(g)
	close(r.started)
	lastIndex := g.Raft().LastIndex
	gate.last.Store(&lastIndex)
	if gate.closed.Load() {
		n.routines.Go(func(ctx context.Context) { n.askShardLeaderCommit(ctx, r) })
	}
	return r, nil
}

// askShardLeaderCommit is askLeaderCommit for a shard's replica: it asks
// the leader its replica follows for the shard's commit index, and opens
// the replica's vote gate once its log has reached it.
func (n *Node) askShardLeaderCommit(ctx context.Context, r *replica) {
	for !r.gate.tryOpen() {
		if r.gate.target.Load() == 0 {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			if c, _, err := n.leaderPeer(pctx, r); err == nil {
				if st, err := wire.CallAs[wire.StatusInfo](pctx, c, wire.ShardStatus{Shard: r.shard}, 0); err == nil && st.Role == "leader" {
					r.gate.sawLeaderCommit(st.CommitIndex)
				}
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeInterval):
		}
	}
}

// close stops the replica's group (which closes its transport) and, but
// for the meta group's, its log store.
func (r *replica) close() error {
	err := r.group.Close()
	if !r.meta {
		if cerr := r.db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close shard %d log store: %w", r.shard, cerr)
		}
	}
	return err
}
