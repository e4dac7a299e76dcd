package lb

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/internal/coalesce"
	"orderly/internal/routines"
	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// Config configures a Balancer.
type Config struct {
	Listen       string   // orderly protocol
	LegacyListen string   // the seed's protocol; empty: off
	Backends     []string // node client addresses
	CacheSize    int      // LRU entries; 0 disables the cache
	// LinearizableCache: with a cache, follow the leader's change feed
	// and answer linearizable reads from the cache behind a read index
	// (linearizable.go). Off, linearizable reads all go to the nodes.
	LinearizableCache bool
	// ReadConsistency is the level of reads on the legacy port, whose
	// requests cannot say.
	ReadConsistency wire.Consistency
	// RetryTimeout bounds one request with all its retries on other nodes.
	RetryTimeout  time.Duration
	ProbeInterval time.Duration // Status probe of a healthy node
	ProbeTimeout  time.Duration
	MaxFrame      uint32
	// LegacyIdleTimeout closes a silent seed-protocol connection.
	LegacyIdleTimeout time.Duration
	// Bounds of the orderly port (MaxConns also of the seed's).
	serve.Bounds
	// TLS is the balancer's certificate (role balancer) and CA: its
	// orderly port and its connections to the nodes are mutual TLS. Nil
	// is --insecure: plaintext, every client an admin.
	TLS *pki.Source
	// LegacyPublic lets LegacyListen be a non-loopback address: the
	// seed's protocol has no TLS and no identity.
	LegacyPublic bool
	// Observe, if set, is told of every orderly-protocol request answered
	// (metrics; serve.Options.Observe).
	Observe func(req wire.Message, took time.Duration, resp wire.Message)
	Logger  hclog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{ReadConsistency: wire.Linearizable, RetryTimeout: 5 * time.Second,
		ProbeInterval: 250 * time.Millisecond, ProbeTimeout: time.Second, MaxFrame: wire.DefaultMaxFrame,
		LegacyIdleTimeout: 2 * time.Minute, Bounds: serve.DefaultBounds(), LinearizableCache: true}
}

// MaxFrameLimit is the largest MaxFrame the balancer accepts.
const MaxFrameLimit = 64 << 20

// Validate reports everything wrong with c at once; it never changes c.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.LegacyListen != "" {
		if host, _, err := net.SplitHostPort(c.LegacyListen); err != nil {
			errs = append(errs, fmt.Errorf("legacy listen %q: %w", c.LegacyListen, err))
		} else if !c.LegacyPublic && !isLoopback(host) {
			errs = append(errs, fmt.Errorf("legacy listen %q: the seed's protocol is plaintext and unauthenticated (anyone who reaches it places orders); it listens on loopback unless --legacy-public says otherwise", c.LegacyListen))
		}
	}
	if len(c.Backends) == 0 {
		errs = append(errs, errors.New("backends: at least one node client address is required"))
	}
	for _, b := range c.Backends {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("backend %q: want host:port", b))
		}
	}
	if c.TLS != nil && c.TLS.Role() != wire.RoleBalancer {
		errs = append(errs, fmt.Errorf("certificate %q has role %s: orderlb needs a balancer certificate (orderctl certs issue --role balancer)", c.TLS.Name(), c.TLS.Role()))
	}
	errs = append(errs, c.Bounds.Check()...)
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache size %d: must not be negative", c.CacheSize))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"retry timeout", c.RetryTimeout}, {"probe interval", c.ProbeInterval}, {"probe timeout", c.ProbeTimeout},
		{"legacy idle timeout", c.LegacyIdleTimeout}} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", t.name, t.d))
		}
	}
	if c.MaxFrame < 64 || c.MaxFrame > MaxFrameLimit {
		errs = append(errs, fmt.Errorf("max frame %d: must be between 64 and %d", c.MaxFrame, MaxFrameLimit))
	}
	if c.ReadConsistency > wire.Stale {
		errs = append(errs, fmt.Errorf("read consistency %v: want linearizable, session or stale", c.ReadConsistency))
	}
	return errors.Join(errs...)
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Balancer is a running orderlb.
type Balancer struct {
	cfg   Config
	log   hclog.Logger
	pool  *pool
	cache *cache
	// readIndexes batch the read-index rounds of linearizable reads
	// answered from the cache, a coalescer per shard (readIndexOf); nil
	// without a coherent cache.
	readIndexes map[uint32]*coalesce.Coalescer
	readIndexMu sync.Mutex
	server      *serve.Server
	legacy      *legacyServer
	// routines owns the balancer's goroutines: the probers, followFeed,
	// the retry loops of orders whose first attempt failed.
	routines *routines.Group

	requests, retries, redirects, failures atomic.Uint64
	turnsExpired                           atomic.Uint64 // orders not sent: waited past the budget for a turn
	inflight                               atomic.Int64  // requests being answered
	watchers                               atomic.Int64  // Watch streams relayed
}

// Start listens on the configured addresses and starts probing backends.
func Start(cfg Config) (*Balancer, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("balancer config: %w", err)
	}
	c, err := newCache(cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	dial := wire.DialOptions{MaxFrame: cfg.MaxFrame}
	var serverTLS *tls.Config
	if cfg.TLS != nil {
		dial.TLS, serverTLS = cfg.TLS.NodeClientConfig, cfg.TLS.ServerConfig()
	}
	b := &Balancer{cfg: cfg, log: cfg.Logger, cache: c,
		pool: newPool(cfg.Backends, cfg.Logger.Named("pool"), cfg.ProbeInterval, cfg.ProbeTimeout, dial)}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	var legacyLn net.Listener
	if cfg.LegacyListen != "" {
		if legacyLn, err = net.Listen("tcp", cfg.LegacyListen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen legacy %s: %w", cfg.LegacyListen, err)
		}
	}
	b.routines = routines.New()
	b.pool.run(b.routines)
	if c != nil && cfg.LinearizableCache {
		b.readIndexes = map[uint32]*coalesce.Coalescer{}
		b.routines.Go(b.followFeed)
	}
	b.server = serve.Orderly(ln, b.handle, serve.Options{MaxFrame: cfg.MaxFrame, Bounds: cfg.Bounds,
		Observe: cfg.Observe, TLS: serverTLS, Stream: b.watch, Async: b.startOrder, Logger: b.log.Named("server")})
	if legacyLn != nil {
		b.legacy = startLegacy(legacyLn, b)
	}
	b.log.Info("balancer started", "listen", b.server.Addr(), "legacy", cfg.LegacyListen,
		"backends", cfg.Backends, "cache_size", cfg.CacheSize)
	return b, nil
}

// Addr is the orderly-protocol address.
func (b *Balancer) Addr() string { return b.server.Addr() }

// LegacyAddr is the seed-protocol address, or "" when off.
func (b *Balancer) LegacyAddr() string {
	if b.legacy == nil {
		return ""
	}
	return b.legacy.conns.Addr()
}

// Close stops serving and probing and waits for every goroutine.
func (b *Balancer) Close() {
	b.server.Close()
	if b.legacy != nil {
		b.legacy.conns.Close()
	}
	b.routines.Stop() // the probers close their connections
	b.readIndexMu.Lock()
	defer b.readIndexMu.Unlock()
	for _, c := range b.readIndexes {
		c.Wait()
	}
}
