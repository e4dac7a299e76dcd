package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/feed"
	"orderly/fsm"
	"orderly/group"
	"orderly/internal/routines"
	"orderly/peernet"
	"orderly/serve"
	"orderly/wire"
)

const raftDBFile = "raft.db"

// Node is one running orderly node: its life (data dir, stores, vote
// gate, alarms, backups), its network (the Raft port, peer connections,
// the client server) and the Raft group it hosts.
type Node struct {
	cfg         Config
	log         hclog.Logger
	group       *group.Group
	raft        *raft.Raft    // the group's
	fsm         *fsm.FSM      // the group's
	raftStarted chan struct{} // closed once meta's group runs
	opened      chan struct{} // closed once Open has started everything
	port        *peernet.Port
	db          logStore
	store       *watchedLogStore // under the cache: write failures, for status
	alarms      *alarms          // the disk alarm: this node's and the cluster's
	snaps       *raft.FileSnapshotStore
	backups     *backups // snapshots being handed out (orderctl snapshot save)
	snapMetrics *snapshotMetrics
	storeKind   string // boltdb or wal: the data dir's log store

	// meta is group as a replica: the meta group (shards.go).
	meta *replica
	// count is the cluster's shard count; shards are this node's replicas
	// of the shards, by shard id, nil where it holds none (of a cluster of
	// one shard, [0] is meta); copy on write under shardsMu (shards.go).
	count    uint32
	shards   atomic.Pointer[[]*replica]
	shardsMu sync.Mutex
	groups   *peernet.Groups // the Raft port's router
	adv      net.Addr        // the Raft advertise address

	peers      *peernet.Pool // streams to the other nodes
	peerServer *serve.Server // serves theirs
	experts    *expertPool
	server     *serve.Server
	feed       *feed.Ring   // the change feed: recent applied orders
	watchers   atomic.Int64 // open Watch streams

	// mayBootstrap: the data dir was empty and --peers given; see
	// bootstrapWhenSafe.
	mayBootstrap bool
	gate         *voteGate // no votes from a node that lost its log
	vouches      vouches   // senders the other members vouched for (vouch.go)

	// routines owns every goroutine the node starts (but the group's,
	// the servers' and the port's, which their Close stops).
	routines *routines.Group
}

// Open starts a node: claims the data dir, opens the log, starts Raft
// (bootstrapping from cfg.Peers on first start, once that is safe) and
// the client server.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { panic(err) }
	}
	if err := claimDataDir(cfg.DataDir, cfg.ID, cfg.Peers); err != nil {
		return nil, err
	}
	if err := checkUpgradeMarker(cfg.DataDir); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, backups: newBackups(), raftStarted: make(chan struct{}), opened: make(chan struct{})}
	n.routines = routines.New()
	n.snapMetrics = newSnapshotMetrics()
	n.feed = feed.New(cfg.WatchHistory, 0)
	var serverTLS *tls.Config
	if cfg.TLS != nil {
		serverTLS = cfg.TLS.ServerConfig()
	}
	n.peers = peernet.NewPool(cfg.TLS, cfg.MaxFrame)
	n.peerServer = serve.NewOrderly(n.handle, serve.Options{MaxFrame: cfg.MaxFrame, RequestTimeout: cfg.RequestTimeout,
		Bounds: serve.Bounds{IdleTimeout: peerIdle, FrameTimeout: cfg.Bounds.FrameTimeout, HandshakeTimeout: cfg.HandshakeTimeout,
			MaxFrameMemory: cfg.Bounds.MaxFrameMemory},
		NodesForward: true, Logger: n.log.Named("peers")})
	n.experts = newExpertPool(cfg.Experts, cfg.ExpertQueue)
	if err := n.startRaft(); err != nil {
		n.routines.Cancel()
		n.peerServer.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ClientAddr)
	if err != nil {
		n.routines.Cancel()
		n.shutdownRaft()
		n.peerServer.Close()
		n.peers.Close()
		return nil, fmt.Errorf("listen client %s: %w", cfg.ClientAddr, err)
	}
	srv := serve.Orderly(ln, n.handle, serve.Options{MaxFrame: cfg.MaxFrame, RequestTimeout: cfg.RequestTimeout,
		Bounds: cfg.Bounds, TLS: serverTLS, Observe: cfg.Observe, Stream: n.watch, Logger: n.log.Named("server")})
	n.server = srv
	n.routines.Every(200*time.Millisecond, n.publishIfNeeded)
	n.routines.Every(time.Second, n.setLimitsIfNeeded)
	n.routines.Every(shardsPublishPeriod, n.publishShards)
	n.routines.Every(adoptPeriod, n.adoptShards)
	n.routines.Every(alarmPeriod, n.watchDisk)
	n.routines.Every(backupIdle/3, n.backups.reap)
	n.routines.Every(feedProgress, n.advanceFeed)
	if n.mayBootstrap {
		n.routines.Go(n.bootstrapWhenSafe)
	}
	close(n.opened)
	n.log.Info("node started", "id", cfg.ID, "raft", cfg.RaftAdvertise, "client", srv.Addr())
	return n, nil
}

func (n *Node) startRaft() error {
	cfg := n.cfg
	db, kind, err := openLogStore(cfg.DataDir, cfg.LogStore, n.log.Named("wal"))
	if err != nil {
		return err
	}
	n.storeKind = kind
	n.store = &watchedLogStore{LogStore: db, log: n.log.Named("logstore"), appendSeconds: newAppendHistogram()}
	n.alarms = newAlarms(cfg.ID, cfg.DataDir, cfg.MinFree, n.store, n.log.Named("alarm"))
	n.alarms.check(time.Now())
	logs, err := raft.NewLogCache(4096, n.store)
	if err != nil {
		db.Close()
		return fmt.Errorf("log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, n.log.Named("snapshots"))
	if err != nil {
		db.Close()
		return fmt.Errorf("open snapshot store %s: %w", cfg.DataDir, err)
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
	if err != nil {
		db.Close()
		return fmt.Errorf("resolve raft advertise %s: %w", cfg.RaftAdvertise, err)
	}
	existing, err := raft.HasExistingState(logs, db, snaps)
	if err != nil {
		db.Close()
		return fmt.Errorf("inspect raft state in %s: %w", cfg.DataDir, err)
	}
	count, err := settleShardCount(cfg.DataDir, cfg.Shards, existing)
	if err != nil {
		db.Close()
		return err
	}
	n.mayBootstrap = !existing && len(cfg.Peers) > 0
	if n.gate, err = newVoteGate(cfg.DataDir, n.log.Named("votes")); err == nil && n.mayBootstrap {
		err = n.gate.hold() // no vote until bootstrapWhenSafe has decided
	}
	if err != nil {
		db.Close()
		return err
	}
	// The meta group as a replica from now on: the Raft port's rules ask
	// it, and wait until its Raft runs (raftStarted).
	n.meta = &replica{meta: true, started: n.raftStarted, feed: n.feed}
	ctx := n.routines.Context()
	trans := peernet.NewTransport(peernet.NewDialer(cfg.TLS, adv, 0), peernet.Rules{
		Config: func() (raft.Configuration, error) { return n.meta.latestConfiguration(ctx) }, Leader: n.meta.followedLeader,
		RefuseVotes: n.gate.refuses, Vouched: n.vouched, Seeds: seedsOf(cfg.Peers)},
		n.log.Named("transport"))
	groups := peernet.NewGroups(n.log.Named("raftport"))
	groups.Add(0, trans)
	n.port, err = peernet.Listen(cfg.RaftAddr, cfg.TLS, cfg.MaxConns, cfg.HandshakeTimeout, groups.Deliver, n.servePeer, n.log.Named("raftport"))
	if err != nil {
		trans.Close()
		db.Close()
		return err
	}
	g, err := group.New(group.Config{
		ID: cfg.ID, Logger: n.log, RequestTimeout: cfg.RequestTimeout, Transport: trans,
		Timing: n.timing(),
		Stores: group.Stores{Logs: logs, Stable: db, Snapshots: snaps},
		FSM: fsm.Options{Logger: n.log.Named("fsm"), Fatal: n.stopForUpgrade,
			SnapshotPersisted: n.snapMetrics.persisted, Changes: n.feed},
		AskLeader: func(ctx context.Context) (uint64, error) { return n.askLeaderReadIndex(ctx, n.meta) },
		TermEntry: n.commitTermEntry,
	})
	if err != nil {
		n.routines.Cancel() // streams waiting for Raft to start give up (latestConfiguration)
		n.port.Close()
		trans.Close()
		db.Close()
		return err
	}
	n.group, n.raft, n.fsm, n.db, n.snaps = g, g.Raft(), g.FSM(), db, snaps
	n.meta.group, n.meta.db, n.meta.snaps, n.meta.trans = g, db, snaps, trans
	n.meta.running.Store(g)
	close(n.raftStarted)
	n.count = count
	n.groups, n.adv = groups, adv
	replicas := make([]*replica, count)
	n.shards.Store(&replicas)
	if count == 1 {
		replicas[0] = n.meta
	} else {
		if err := sweepDropped(n.cfg.DataDir, n.log); err != nil {
			n.shutdownRaft()
			return err
		}
		hosted, err := n.shardsToHost(existing)
		if err != nil {
			n.shutdownRaft()
			return err
		}
		for _, id := range hosted {
			// A data dir that may bootstrap may also be a lost disk:
			// its replicas hold their votes as the meta group's gate
			// does, until bootstrapWhenSafe decides (votegate.go).
			r, err := n.openReplica(id, groups, adv, n.mayBootstrap)
			if err != nil {
				n.shutdownRaft()
				return err
			}
			replicas[id] = r
		}
	}
	lastIndex := n.raft.LastIndex
	n.gate.last.Store(&lastIndex)
	if n.gate.closed.Load() {
		n.routines.Go(n.askLeaderCommit)
	}
	return nil
}

// timing is the groups' Raft timing.
func (n *Node) timing() group.Timing {
	c := n.cfg
	return group.Timing{HeartbeatTimeout: c.HeartbeatTimeout, ElectionTimeout: c.ElectionTimeout,
		LeaderLeaseTimeout: c.LeaderLeaseTimeout, CommitTimeout: c.CommitTimeout,
		SnapshotThreshold: c.SnapshotThreshold, SnapshotInterval: c.SnapshotInterval}
}

// seedsOf is --peers as peernet.Rules.Seeds.
func seedsOf(peers []Peer) map[string]raft.ServerAddress {
	seeds := map[string]raft.ServerAddress{}
	for _, p := range peers {
		seeds[p.ID] = raft.ServerAddress(p.RaftAddr)
	}
	return seeds
}

// commitTermEntry is the group's term entry (group.Config.TermEntry): a
// barrier, or, if the cluster does not know this node's client address
// yet, the entry that publishes it: followers need it to ask for read indexes, and should not
// wait for publishLoop's next tick to serve linearizable reads.
func (n *Node) commitTermEntry() error {
	select { // the group may lead before New has returned
	case <-n.raftStarted:
	case <-n.routines.Context().Done():
		return errors.New("node closing")
	}
	if !n.published() {
		return n.applySetMember(n.cfg.ID, n.cfg.ClientAdvertise, fsm.Version)
	}
	return n.group.Await(n.raft.Barrier(n.cfg.RequestTimeout))
}

// isReadyLeader reports whether this node leads and has committed an entry
// of its current term.
func (n *Node) isReadyLeader() bool { return n.group.IsReadyLeader() }

// leaderClientAddr returns the current leader's id and client address, or
// empty strings when no leader is known (or it has not published yet).
func (n *Node) leaderClientAddr() (string, string) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ""
	}
	return string(id), n.fsm.ClientAddr(string(id))
}

// publishIfNeeded makes sure the cluster knows this node's client address
// and command version.
func (n *Node) publishIfNeeded() {
	if n.published() {
		return
	}
	if err := n.publish(); err != nil {
		n.log.Debug("publish client address", "error", err)
	}
}

func (n *Node) publish() error {
	ctx, cancel := context.WithTimeout(n.routines.Context(), n.cfg.RequestTimeout)
	defer cancel()
	if n.raft.State() == raft.Leader {
		return n.applySetMember(n.cfg.ID, n.cfg.ClientAdvertise, fsm.Version)
	}
	c, _, err := n.leaderPeer(ctx, n.meta)
	if err != nil {
		return err
	}
	return c.Admin(ctx, wire.Publish{ID: n.cfg.ID, ClientAddr: n.cfg.ClientAdvertise, Version: fsm.Version})
}

// setLimitsIfNeeded: a ready leader proposes SetLimits when the state
// machine's session cap is not this node's --max-sessions, once every
// member understands the command (its version is 2).
func (n *Node) setLimitsIfNeeded() {
	want := fsm.SetLimits{MaxSessions: n.cfg.MaxSessions, EvictIdle: n.cfg.SessionEvictIdle}
	for _, r := range n.dataReplicas() {
		if !r.group.IsReadyLeader() {
			continue
		}
		if set, have := r.group.FSM().Limits(); set && have == want {
			continue
		}
		cmd := fsm.AppendSetLimits(nil, want)
		if err := n.applyVersionedTo(r.group, cmd, fsm.VersionOf(cmd)); err != nil {
			n.log.Debug("session cap not set yet", "shard", r.shard, "error", err)
			continue
		}
		n.log.Info("session cap set", "shard", r.shard, "max_sessions", want.MaxSessions, "evict_idle", want.EvictIdle)
	}
}

// published says whether the cluster knows this node's client address and
// command version.
func (n *Node) published() bool {
	return n.fsm.ClientAddr(n.cfg.ID) == n.cfg.ClientAdvertise && n.fsm.MemberVersion(n.cfg.ID) == fsm.Version
}

func (n *Node) applySetMember(id, addr string, version uint16) error {
	cmd := fsm.AppendSetMember(nil, fsm.SetMember{ID: id, ClientAddr: addr, Version: version})
	if err := n.applyVersioned(cmd, fsm.VersionOf(cmd)); err != nil {
		return fmt.Errorf("apply member address of %s: %w", id, err)
	}
	n.log.Info("published client address and command version", "id", id, "addr", addr, "version", version)
	return nil
}

// Addr is the client server's listening address.
func (n *Node) Addr() string { return n.server.Addr() }

// Close hands leadership over if this node leads, then stops the client
// server, Raft and the log store, in that order.
func (n *Node) Close() error {
	groups := n.dataReplicas()
	if n.count > 1 {
		groups = append(groups, n.meta)
	}
	for _, r := range groups {
		if r.raft().State() != raft.Leader || len(r.raft().GetConfiguration().Configuration().Servers) < 2 {
			continue
		}
		if err := r.group.Await(r.raft().LeadershipTransfer()); err != nil {
			n.log.Warn("leadership transfer before shutdown failed", "group", r.gid, "error", err)
		} else {
			n.log.Info("handed leadership over before shutdown", "group", r.gid)
		}
	}
	n.server.Close()
	n.routines.Stop()
	err := n.shutdownRaft() // before the peers: ReadIndex rounds ask them
	n.peerServer.Close()
	n.peers.Close()
	n.backups.closeAll()
	return err
}

func (n *Node) shutdownRaft() error {
	var err error
	for _, r := range n.dataReplicas() {
		if r.meta {
			continue
		}
		if cerr := r.close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if cerr := n.group.Close(); err == nil && cerr != nil { // closes the transport
		err = cerr
	}
	n.port.Close()
	if cerr := n.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close log store: %w", cerr)
	}
	if err != nil {
		return err
	}
	n.log.Info("node stopped", "id", n.cfg.ID)
	return nil
}
