package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"orderly/internal/freeport"
	"orderly/wire"
)

// ClusterConfig says how to run a local cluster.
type ClusterConfig struct {
	Orderd  string   // path of the orderd binary
	Dir     string   // where data dirs and logs go
	Nodes   int      // number of nodes, default 3
	Host    string   // loopback address to bind, default 127.0.0.1
	Experts int      // --experts, default 4
	Extra   []string // extra orderd flags for every node
	Env     []string // extra environment (KEY=value) for every node
	// Net, when set, runs node i in its own network namespace on
	// Net.IP(i), so that partitions can be made; Host is then ignored.
	Net *Net
	// DataDirSize, when set ("256m"), puts each node's data dir on a tmpfs
	// of that size (needs root), so the disk-full nemesis can fill it.
	// Stop unmounts them.
	DataDirSize string
	// NodeSetup, when set, may give a node its own binary and environment
	// (Node.Orderd, Node.Env) before it first starts.
	NodeSetup func(n *Node)
	// Certs, when set, runs every process with mutual TLS (node i
	// presents certificate "ni", balancers "orderlb"); nil runs them
	// --insecure.
	Certs *Certs
	// HTTP gives every node and balancer an HTTP side port (--http-addr)
	// on a free port (Node.HTTPAddr, Balancer.HTTPAddr).
	HTTP bool
}

// Node is one orderd process of a Cluster.
type Node struct {
	ID         string
	RaftAddr   string
	ClientAddr string
	DataDir    string
	Index      int  // 1-based position in the cluster
	mounted    bool // DataDir is a tmpfs of ClusterConfig.DataDirSize
	// Orderd and Env, when set, replace ClusterConfig.Orderd and add to
	// ClusterConfig.Env for this node's next start (mixed-version tests).
	Orderd string
	Env    []string
	// Args are extra orderd flags for this node alone.
	Args []string
	// HTTPAddr is the node's side port with ClusterConfig.HTTP.
	HTTPAddr string
	tls      func(string) *tls.Config // the admin's, for WaitUp
	process
}

// Cluster is a set of orderd processes it started and owns.
type Cluster struct {
	cfg   ClusterConfig
	peers string
	Nodes []*Node

	Balancers []*Balancer // started by StartBalancer; Stop kills them too
}

// StartCluster starts cfg.Nodes nodes bootstrapped from one peer list.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Experts == 0 {
		cfg.Experts = 4
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	c := &Cluster{cfg: cfg}
	var peers []string
	for i := 1; i <= cfg.Nodes; i++ {
		raftAddr, clientAddr, err := nodeAddrs(cfg, i)
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("n%d", i)
		c.Nodes = append(c.Nodes, &Node{ID: id, RaftAddr: raftAddr, ClientAddr: clientAddr, Index: i,
			DataDir: filepath.Join(cfg.Dir, id), process: process{name: id, LogPath: filepath.Join(cfg.Dir, id+".log")}})
		peers = append(peers, id+"="+raftAddr)
		c.Nodes[len(c.Nodes)-1].tls = c.ClientTLS()
		if cfg.HTTP {
			if c.Nodes[len(c.Nodes)-1].HTTPAddr, err = freeport.Addr(cfg.Host); err != nil {
				return nil, err
			}
		}
		if cfg.NodeSetup != nil {
			cfg.NodeSetup(c.Nodes[len(c.Nodes)-1])
		}
	}
	c.peers = strings.Join(peers, ",")
	if cfg.DataDirSize != "" {
		for _, n := range c.Nodes {
			if err := mountTmpfs(n.DataDir, cfg.DataDirSize); err != nil {
				c.Stop()
				return nil, err
			}
			n.mounted = true
		}
	}
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if err := n.WaitUp(ctx); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// nodeAddrs picks node i's Raft and client addresses: fixed ports on its
// own address in a Net, free loopback ports otherwise.
func nodeAddrs(cfg ClusterConfig, i int) (raftAddr, clientAddr string, err error) {
	if cfg.Net != nil {
		ip := cfg.Net.IP(i)
		return fmt.Sprintf("%s:%d", ip, RaftPort), fmt.Sprintf("%s:%d", ip, ClientPort), nil
	}
	if raftAddr, err = freeport.Addr(cfg.Host); err != nil {
		return "", "", err
	}
	clientAddr, err = freeport.Addr(cfg.Host)
	return raftAddr, clientAddr, err
}

// WaitUp waits until the node's process answers Status on its client
// address; it fails at once if the process exits.
func (n *Node) WaitUp(ctx context.Context) error {
	for {
		if !n.Running() {
			return fmt.Errorf("node %s exited; see %s", n.ID, n.LogPath)
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := Status(sctx, n.ClientAddr, n.tls)
		cancel()
		if err == nil && s.ID == n.ID {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not up on %s: %w (last: %v)", n.ID, n.ClientAddr, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addrs returns every node's client address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.ClientAddr)
	}
	return out
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Start (re)starts a node's process on its data dir.
func (c *Cluster) Start(n *Node) error {
	args := append([]string{"--id", n.ID, "--data-dir", n.DataDir, "--raft-addr", n.RaftAddr,
		"--client-addr", n.ClientAddr, "--peers", c.peers, "--experts", fmt.Sprint(c.cfg.Experts)}, c.cfg.Extra...)
	args = append(args, n.Args...)
	bin := c.cfg.Orderd
	if n.Orderd != "" {
		bin = n.Orderd
	}
	if c.cfg.Net != nil {
		bin, args = c.cfg.Net.Command(n.Index, bin, args...)
	}
	args = append(args, c.cfg.Certs.Flags(n.ID)...)
	if n.HTTPAddr != "" {
		args = append(args, "--http-addr", n.HTTPAddr)
	}
	return n.start(bin, args, append(slices.Clone(c.cfg.Env), n.Env...))
}

// Stop kills every node and waits for them.
func (c *Cluster) Stop() {
	for _, b := range c.Balancers {
		b.Kill() //nolint:errcheck // best effort on teardown
	}
	for _, n := range c.Nodes {
		n.Kill() //nolint:errcheck // best effort on teardown
		if n.mounted {
			unmount(n.DataDir) //nolint:errcheck // best effort on teardown
			n.mounted = false
		}
	}
}

// Certs are the cluster's certificates; nil when it runs --insecure.
func (c *Cluster) Certs() *Certs { return c.cfg.Certs }

// ClientTLS is the admin client's TLS (nil when --insecure), for
// client.Options.TLS.
func (c *Cluster) ClientTLS() func(string) *tls.Config {
	if c.cfg.Certs == nil {
		return nil
	}
	return c.cfg.Certs.Admin()
}

// Status asks the node or balancer at addr for its status, as the admin.
func (c *Cluster) Status(ctx context.Context, addr string) (wire.StatusInfo, error) {
	return Status(ctx, addr, c.ClientTLS())
}

// Status asks the node or balancer at addr for its status; tls as in
// wire.DialOptions.
func Status(ctx context.Context, addr string, tls func(string) *tls.Config) (wire.StatusInfo, error) {
	conn, err := wire.Dial(ctx, addr, wire.DialOptions{Timeout: time.Second, TLS: tls})
	if err != nil {
		return wire.StatusInfo{}, err
	}
	defer conn.Close()
	return conn.Status(ctx)
}

// WaitLeader polls the running nodes until they agree on a leader whose
// client address is published, and returns that node.
func (c *Cluster) WaitLeader(ctx context.Context) (*Node, error) {
	for {
		if n := c.leader(ctx); n != nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader elected: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) leader(ctx context.Context) *Node {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := c.Status(sctx, n.ClientAddr)
		cancel()
		if err == nil && s.Role == "leader" && s.LeaderAddr == n.ClientAddr {
			return n
		}
	}
	return nil
}

// HealAll resumes paused nodes, restarts dead ones, heals net (if any)
// and waits for a leader.
func (c *Cluster) HealAll(net *Net) error {
	for _, n := range c.Nodes {
		if n.Running() {
			n.Signal(syscall.SIGCONT) //nolint:errcheck // may not be paused
		} else if err := c.Start(n); err != nil {
			return err
		}
		if net != nil {
			if err := net.Heal(n.Index); err != nil {
				return err
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.WaitLeader(ctx)
	return err
}
