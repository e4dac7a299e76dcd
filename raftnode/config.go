package raftnode

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/fsm"
	"orderly/pki"
	"orderly/serve"
	"orderly/shard"
	"orderly/wire"
)

// Peer is one initial member of the cluster: its Raft id and Raft address.
type Peer struct {
	ID       string
	RaftAddr string
}

// ParsePeers parses "id=host:port,id=host:port".
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want id=host:port", part)
		}
		peers = append(peers, Peer{ID: id, RaftAddr: addr})
	}
	return peers, nil
}

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// ID is this node's Raft server id, unique and stable for the life of
	// its data dir.
	ID string
	// DataDir holds the Raft log (BoltDB), snapshots and the identity file.
	DataDir string
	// RaftAddr is where the Raft transport listens; RaftAdvertise is what
	// other nodes dial (default RaftAddr, which then must not be 0.0.0.0).
	RaftAddr      string
	RaftAdvertise string
	// ClientAddr is where orderly clients connect; ClientAdvertise is what
	// the node publishes to the cluster (default ClientAddr).
	ClientAddr      string
	ClientAdvertise string
	// Peers are the initial members. Every node of a new cluster gets the
	// same list and bootstraps from it once. Empty: the node joins an
	// existing cluster and waits to be added (orderctl members add).
	Peers []Peer
	// Experts is the size of the expert pool that builds custom orders.
	Experts int
	// WatchHistory is how many applied orders the node keeps in memory
	// for watchers (about 48 bytes each): a watcher may resume from any
	// of them; older ones answer Compacted, and a watcher that falls
	// further behind than this is cut off.
	WatchHistory int
	// MaxWatchers bounds the Watch streams a node serves at once (each
	// holds a goroutine, a reply budget and a socket buffer); past it a
	// Watch is answered Overloaded.
	MaxWatchers int
	// ExpertQueue bounds how many custom orders may wait for an expert
	// before the node answers Overloaded.
	ExpertQueue int
	// MaxFrame is the largest frame accepted from a client.
	MaxFrame uint32
	// Bounds of the client port (MaxConns and HandshakeTimeout also of
	// the Raft port).
	serve.Bounds
	// Shards is the shard count of a new cluster (orderd --shards): every
	// node given --peers must be given the same. A data dir keeps the
	// count it was created with; 0 takes it, and 1 for a new data dir.
	Shards uint32
	// Replicas is how many replicas each shard of a new sharded cluster
	// gets (orderd --replicas), placed over --peers; at most the peers.
	Replicas int
	// MaxSessions caps the client sessions the state machine keeps; past
	// it the least recently written is evicted (the same on every
	// replica). The leader proposes it; give every node the same. 0: none.
	MaxSessions uint32
	// SessionEvictIdle: the cap evicts only sessions idle this long (leader
	// time); a new client finding none is refused (Overloaded).
	SessionEvictIdle time.Duration
	// RequestTimeout bounds one request: a write's Apply, a read's wait.
	RequestTimeout time.Duration
	// LogStore is the log store of a new data dir (StoreBoltDB or
	// StoreWAL; "" for DefaultLogStore); an existing one keeps its own.
	LogStore string
	// MinFree: with less free space than this under DataDir the node
	// raises its disk alarm and the cluster takes no new orders (alarm.go).
	// 0: only a write that failed with ENOSPC raises it.
	MinFree uint64
	// Raft timing: see raft.Config.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is how many log entries trigger a snapshot.
	SnapshotThreshold uint64
	// SnapshotInterval is how often a group checks SnapshotThreshold.
	// hashicorp/raft's timer starts again with the process, and its
	// default (120-240 s) let nodes restarted every minute or two go a
	// whole 30-minute chaos run without a snapshot: their logs grew
	// without bound, and so did the time to open them (a start scans the
	// log since the last snapshot).
	SnapshotInterval time.Duration
	// TLS is the node's certificate (role node, named by ID) and CA: the
	// client and Raft ports and the node's own connections to peers are
	// mutual TLS. Nil is --insecure: plaintext, every client an admin.
	TLS *pki.Source
	// Observe, if set, is told of every client request answered (metrics;
	// serve.Options.Observe).
	Observe func(req wire.Message, took time.Duration, resp wire.Message)
	// Logger for the node; Named() per component.
	Logger hclog.Logger
	// Fatal stops the process when a committed entry cannot be applied (a
	// rolling upgrade met a command this build does not know). It must not
	// return. Default: panic. orderd logs and exits with status 3.
	Fatal func(error)
}

// DefaultConfig returns a Config with every tunable set; the caller fills
// in ID, DataDir, addresses and Peers.
func DefaultConfig() Config {
	return Config{
		Experts:            4,
		ExpertQueue:        1024,
		WatchHistory:       DefaultWatchHistory,
		MaxWatchers:        DefaultMaxWatchers,
		MaxFrame:           1 << 20,
		Bounds:             serve.DefaultBounds(),
		MaxSessions:        1_000_000,
		Replicas:           3,
		SessionEvictIdle:   fsm.DefaultEvictIdle,
		RequestTimeout:     5 * time.Second,
		MinFree:            DefaultMinFree,
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: time.Second,
		CommitTimeout:      10 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   5 * time.Second,
	}
}

// DefaultMinFree is --min-free's default: room for a few snapshots and
// minutes of log at full speed.
const DefaultMinFree = 256 << 20

// MaxFrameLimit is the largest MaxFrame a node accepts: a client may make
// a node hold a frame of this size per connection.
const MaxFrameLimit = 64 << 20

// withDefaults fills the fields whose default depends on others: the
// advertised addresses default to the listen addresses.
func (c Config) withDefaults() Config {
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftAddr
	}
	if c.ClientAdvertise == "" {
		c.ClientAdvertise = c.ClientAddr
	}
	return c
}

// Validate reports every field that is wrong and why, at once. It never
// changes c; Open fills the defaults that depend on other fields.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" || len(c.ID) > 255 {
		errs = append(errs, errors.New("id: must be 1 to 255 bytes"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: required"))
	}
	if c.Replicas < 0 || c.Replicas > fsm.MaxShardReplicas {
		errs = append(errs, fmt.Errorf("replicas %d: want 1 to %d", c.Replicas, fsm.MaxShardReplicas))
	}
	if c.Shards != 0 {
		if err := shard.Check(c.Shards); err != nil {
			errs = append(errs, fmt.Errorf("shards: %w", err))
		}
	}
	if c.LogStore != "" && c.LogStore != StoreBoltDB && c.LogStore != StoreWAL {
		errs = append(errs, fmt.Errorf("log store %q: want %s or %s", c.LogStore, StoreWAL, StoreBoltDB))
	}
	for _, a := range []struct{ name, addr string }{{"raft addr", c.RaftAddr}, {"client addr", c.ClientAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.name, a.addr, err))
		}
	}
	d := c.withDefaults()
	for _, a := range []struct{ name, addr string }{{"raft advertise", d.RaftAdvertise}, {"client advertise", d.ClientAdvertise}} {
		if host, _, err := net.SplitHostPort(a.addr); err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
			errs = append(errs, fmt.Errorf("%s %q: other nodes cannot dial an unspecified host; set it", a.name, a.addr))
		}
	}
	if len(c.Peers) > 0 {
		errs = append(errs, d.checkPeers()...)
	}
	if c.Experts < 1 {
		errs = append(errs, fmt.Errorf("experts %d: need at least 1", c.Experts))
	}
	if c.WatchHistory < 1 || c.WatchHistory > 1<<26 {
		errs = append(errs, fmt.Errorf("watch history %d: want 1 to %d orders", c.WatchHistory, 1<<26))
	}
	if c.MaxWatchers < 1 {
		errs = append(errs, fmt.Errorf("max watchers %d: want at least 1", c.MaxWatchers))
	}
	if c.ExpertQueue < 0 {
		errs = append(errs, fmt.Errorf("expert queue %d: must not be negative", c.ExpertQueue))
	}
	if c.MaxFrame < 64 || c.MaxFrame > MaxFrameLimit {
		errs = append(errs, fmt.Errorf("max frame %d: must be between 64 and %d", c.MaxFrame, MaxFrameLimit))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("request timeout: must be positive"))
	}
	errs = append(errs, c.Bounds.Check()...)
	if c.SessionEvictIdle < 0 {
		errs = append(errs, fmt.Errorf("session evict idle %v: must not be negative", c.SessionEvictIdle))
	}
	if c.TLS != nil && (c.TLS.Role() != wire.RoleNode || c.TLS.Name() != c.ID) {
		errs = append(errs, fmt.Errorf("certificate %q has role %s: node %s needs a node certificate named %s (orderctl certs issue --role node --name %s)",
			c.TLS.Name(), c.TLS.Role(), c.ID, c.ID, c.ID))
	}
	// hashicorp/raft's own rules (raft.ValidateConfig), here so that every
	// problem is reported at once.
	for _, t := range []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{{"heartbeat timeout", c.HeartbeatTimeout, 5 * time.Millisecond}, {"election timeout", c.ElectionTimeout, 5 * time.Millisecond},
		{"leader lease timeout", c.LeaderLeaseTimeout, 5 * time.Millisecond}, {"commit timeout", c.CommitTimeout, time.Millisecond}} {
		if t.d < t.min {
			errs = append(errs, fmt.Errorf("%s %v: must be at least %v", t.name, t.d, t.min))
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("leader lease timeout %v: must not exceed the heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("election timeout %v: must be at least the heartbeat timeout %v", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if c.SnapshotThreshold == 0 {
		errs = append(errs, errors.New("snapshot threshold: must be positive"))
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("snapshot interval %v: must be at least 5ms", c.SnapshotInterval))
	}
	return errors.Join(errs...)
}

func (c Config) checkPeers() []error {
	var errs []error
	ids, addrs := map[string]bool{}, map[string]bool{}
	self := false
	for _, p := range c.Peers {
		if ids[p.ID] || addrs[p.RaftAddr] {
			errs = append(errs, fmt.Errorf("peers: %s=%s appears twice", p.ID, p.RaftAddr))
		}
		if _, port, err := net.SplitHostPort(p.RaftAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("peers: %s=%s: not a host:port", p.ID, p.RaftAddr))
		}
		ids[p.ID], addrs[p.RaftAddr] = true, true
		if p.ID == c.ID {
			self = true
			if p.RaftAddr != c.RaftAdvertise {
				errs = append(errs, fmt.Errorf("peers: this node %s is listed at %s but advertises %s", c.ID, p.RaftAddr, c.RaftAdvertise))
			}
		}
	}
	if !self {
		errs = append(errs, fmt.Errorf("peers: this node's id %q is not among them", c.ID))
	}
	return errs
}

// clusterID names the cluster a set of initial peers makes, the way etcd
// derives its cluster id from --initial-cluster.
func clusterID(peers []Peer) string {
	if len(peers) == 0 {
		return ""
	}
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.ID + "=" + p.RaftAddr
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
