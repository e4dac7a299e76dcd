// Command orderlb is orderly's balancer: it speaks the orderly protocol
// (and, optionally, the seed system's protocol) to clients, sends writes
// to the Raft leader and reads round-robin to followers, and caches
// records for session and stale reads.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"orderly/api"
	"orderly/internal/daemon"
	"orderly/lb"
	"orderly/observe"
	"orderly/wire"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "orderlb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := lb.DefaultConfig()
	fs := flag.NewFlagSet("orderlb", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:6000", "orderly protocol listen address")
	fs.StringVar(&cfg.LegacyListen, "legacy-listen", "", "seed protocol listen address (empty: off); plaintext, every request a writer's, so loopback only unless --legacy-public")
	fs.BoolVar(&cfg.LegacyPublic, "legacy-public", false, "let --legacy-listen be a non-loopback address: anyone who reaches it places orders, without TLS")
	backends := fs.String("backends", "", "node client addresses host:port,... (required)")
	fs.IntVar(&cfg.CacheSize, "cache-size", 10000, "LRU cache entries (0: no cache)")
	fs.BoolVar(&cfg.LinearizableCache, "cache-linearizable", cfg.LinearizableCache, "follow the leader's change feed and answer linearizable reads from the cache behind a read index (false: they all go to the nodes)")
	cons := fs.String("read-consistency", "linearizable", "level of reads on the seed port: linearizable, session or stale")
	fs.DurationVar(&cfg.RetryTimeout, "retry-timeout", cfg.RetryTimeout, "bound on one request with its retries on other nodes")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", cfg.ProbeInterval, "Status probe interval of a healthy node")
	fs.DurationVar(&cfg.ProbeTimeout, "probe-timeout", cfg.ProbeTimeout, "bound on one Status probe of a node")
	fs.DurationVar(&cfg.LegacyIdleTimeout, "legacy-idle-timeout", cfg.LegacyIdleTimeout, "close a seed-protocol connection silent this long")
	maxFrame := daemon.FrameFlag(fs, cfg.MaxFrame)
	daemon.BoundsFlags(fs, &cfg.Bounds)
	df := daemon.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	for _, b := range strings.Split(*backends, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Backends = append(cfg.Backends, b)
		}
	}
	var err error
	if cfg.ReadConsistency, err = wire.ParseConsistency(*cons); err != nil {
		return fmt.Errorf("--read-consistency: %w", err)
	}
	if cfg.MaxFrame, err = maxFrame(); err != nil {
		return err
	}
	if cfg.Logger, err = df.Logger("orderlb"); err != nil {
		return err
	}
	if err := daemon.TestFault(cfg.Logger); err != nil {
		return err
	}
	if cfg.TLS, err = df.TLS(cfg.Logger); err != nil {
		return err
	}
	side, err := df.Side(cfg.Logger)
	if err != nil {
		return err
	}
	cfg.Observe = side.Observe()
	return daemon.Run(df, cfg.Logger, func() (func() error, error) {
		b, err := lb.Start(cfg)
		if err != nil {
			return nil, err
		}
		if err := side.Serve(observe.Process{Ready: b.Ready, Status: b.Status, Members: b.MemberStatuses,
			Shards: b.ShardMap, ShardStatus: b.ShardStatus},
			api.Backend{Do: b.ServeAPI, Watch: b.Watch, Shards: b.Shards}); err != nil {
			b.Close()
			return nil, err
		}
		return func() error { side.Close(); b.Close(); return nil }, nil
	})
}
