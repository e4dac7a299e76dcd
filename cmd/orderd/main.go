// Command orderd runs one orderly node: a Raft replica of the order state
// machine that serves orderly clients on its client port.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"

	"orderly/api"
	"orderly/faults"
	"orderly/fsm"
	"orderly/internal/daemon"
	"orderly/observe"
	"orderly/raftnode"
	"orderly/shard"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "orderd:", err)
		if errors.Is(err, fsm.ErrNeedsUpgrade) {
			os.Exit(exitNeedsUpgrade)
		}
		os.Exit(1)
	}
}

// exitNeedsUpgrade is orderd's exit status when its log holds a command
// this build does not know: restarting the same binary cannot help
// (systemd: RestartPreventExitStatus=3).
const exitNeedsUpgrade = 3

func run(args []string) error {
	cfg := raftnode.DefaultConfig()
	fs := flag.NewFlagSet("orderd", flag.ContinueOnError)
	fs.StringVar(&cfg.ID, "id", "", "this node's Raft id (required, stable for the data dir's life)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and identity (required)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:7001", "Raft transport listen address")
	fs.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address other nodes dial (default --raft-addr)")
	fs.StringVar(&cfg.ClientAddr, "client-addr", "127.0.0.1:6001", "client protocol listen address")
	fs.StringVar(&cfg.ClientAdvertise, "client-advertise", "", "client address published to the cluster (default --client-addr)")
	shards := fs.Uint("shards", 0, fmt.Sprintf("shards of a NEW cluster (1 to %d, the same on every node of --peers): customers are spread over that many Raft groups, each with a replica on every node; an existing data dir keeps its own count (0: that count, or 1)", shard.MaxShards))
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "replicas of each shard of a NEW sharded cluster, placed over --peers (at most their number)")
	peers := fs.String("peers", "", "initial members as id=raft_addr,... (same on every node; empty: join an existing cluster)")
	fs.IntVar(&cfg.Experts, "experts", cfg.Experts, "size of the expert pool for custom orders")
	fs.IntVar(&cfg.ExpertQueue, "expert-queue", cfg.ExpertQueue, "custom orders that may wait for an expert before Overloaded")
	fs.IntVar(&cfg.MaxWatchers, "max-watchers", cfg.MaxWatchers, "Watch streams served at once; past it a watch is answered Overloaded")
	fs.IntVar(&cfg.WatchHistory, "watch-history", cfg.WatchHistory, "applied orders kept in memory for watchers (about 48 bytes each): how far back a watcher may resume, and how far behind it may fall before it is cut off")
	maxFrame := daemon.FrameFlag(fs, cfg.MaxFrame)
	daemon.BoundsFlags(fs, &cfg.Bounds)
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "bound on one request (apply or read wait)")
	fs.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", cfg.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&cfg.ElectionTimeout, "election-timeout", cfg.ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&cfg.LeaderLeaseTimeout, "leader-lease-timeout", cfg.LeaderLeaseTimeout, "Raft leader lease timeout (step-down only; reads never use a lease)")
	fs.DurationVar(&cfg.CommitTimeout, "commit-timeout", cfg.CommitTimeout, "Raft commit timeout: how long a follower may wait for a heartbeat that carries the commit index")
	maxSessions := fs.Uint64("max-sessions", uint64(cfg.MaxSessions), "client sessions the cluster keeps (the leader's value is applied); past it the least recently written is evicted and its retries get SessionExpired (0: no cap)")
	fs.DurationVar(&cfg.SessionEvictIdle, "session-evict-idle", cfg.SessionEvictIdle, "the session cap evicts only sessions idle this long (leader time); a new client finding none is answered Overloaded")
	minFree := daemon.SizeFlag(fs, "min-free", cfg.MinFree, "free space under --data-dir below which the node raises its disk alarm and the cluster takes no new orders (reads go on; clears by itself); 0: only a failed write raises it")
	fs.StringVar(&cfg.LogStore, "log-store", "", "log store of a NEW data dir: wal (hashicorp/raft-wal, one fsync per append) or boltdb (default "+raftnode.DefaultLogStore+"); an existing data dir keeps its own (status: log_store)")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", cfg.SnapshotThreshold, "log entries between snapshots")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "how often each group checks --snapshot-threshold")
	restore := fs.String("restore", "", "seed an empty --data-dir of a NEW cluster (members: --peers, the same on every node) from a backup (orderctl snapshot save), then run; a data dir already seeded from the same backup starts normally")
	recover := fs.String("recover", "", "disaster recovery, node stopped: force these members (id=raft_addr,...) onto --data-dir, then exit; see deploy/README.md")
	df := daemon.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	var err error
	if cfg.Peers, err = raftnode.ParsePeers(*peers); err != nil {
		return fmt.Errorf("--peers: %w", err)
	}
	if cfg.MaxFrame, err = maxFrame(); err != nil {
		return err
	}
	if *maxSessions > math.MaxUint32 {
		return fmt.Errorf("--max-sessions %d: must fit in 32 bits", *maxSessions)
	}
	cfg.MaxSessions = uint32(*maxSessions)
	cfg.Shards = uint32(min(*shards, shard.MaxShards+1))
	cfg.MinFree = *minFree
	logger, err := df.Logger("orderd")
	if err != nil {
		return err
	}
	if err := daemon.TestFault(logger); err != nil {
		return err
	}
	cfg.Logger = logger.With("node", cfg.ID)
	cfg.Fatal = func(err error) {
		cfg.Logger.Error("stopping: this node cannot apply the committed log; upgrade orderd, then start it again", "error", err)
		fmt.Fprintln(os.Stderr, "orderd:", err)
		os.Exit(exitNeedsUpgrade)
	}
	if *recover == "" {
		if cfg.TLS, err = df.TLS(cfg.Logger); err != nil {
			return err
		}
	}
	if *recover != "" {
		members, err := raftnode.ParsePeers(*recover)
		if err != nil {
			return fmt.Errorf("--recover: %w", err)
		}
		if cfg.ID == "" || cfg.DataDir == "" {
			return fmt.Errorf("--recover needs --id and --data-dir")
		}
		return raftnode.Recover(cfg.DataDir, cfg.ID, members, cfg.Logger)
	}
	if *restore != "" {
		if err := raftnode.Restore(cfg.DataDir, cfg.ID, cfg.LogStore, cfg.Peers, cfg.Replicas, *restore, cfg.Logger); err != nil {
			return err
		}
	}
	// SIGUSR1/SIGUSR2 slow the log store down and back (faults builds only).
	defer faults.HandleSignals(cfg.Logger.Warn)()
	side, err := df.Side(cfg.Logger)
	if err != nil {
		return err
	}
	cfg.Observe = side.Observe()
	return daemon.Run(df, cfg.Logger, func() (func() error, error) {
		node, err := raftnode.Open(cfg)
		if err != nil {
			return nil, err
		}
		if err := side.Serve(observe.Process{Ready: node.Ready, Status: node.Status, Members: node.MemberStatuses,
			Shards: node.ShardMap, ShardStatus: node.ShardStatus,
			Orders: node.OrdersApplied}, api.Backend{Do: node.ServeAPI, Watch: node.Watch, Shards: node.Shards}, node.Collectors()...); err != nil {
			node.Close()
			return nil, err
		}
		return func() error { side.Close(); return node.Close() }, nil
	})
}
