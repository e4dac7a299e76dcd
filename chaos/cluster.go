package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

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
}

// Node is one orderd process of a Cluster.
type Node struct {
	ID         string
	RaftAddr   string
	ClientAddr string
	DataDir    string
	LogPath    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// Cluster is a set of orderd processes it started and owns.
type Cluster struct {
	cfg   ClusterConfig
	peers string
	Nodes []*Node
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
	c := &Cluster{cfg: cfg}
	var peers []string
	for i := 1; i <= cfg.Nodes; i++ {
		raftAddr, err := FreePort(cfg.Host)
		if err != nil {
			return nil, err
		}
		clientAddr, err := FreePort(cfg.Host)
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("n%d", i)
		c.Nodes = append(c.Nodes, &Node{ID: id, RaftAddr: raftAddr, ClientAddr: clientAddr,
			DataDir: filepath.Join(cfg.Dir, id), LogPath: filepath.Join(cfg.Dir, id+".log")})
		peers = append(peers, id+"="+raftAddr)
	}
	c.peers = strings.Join(peers, ",")
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

// WaitUp waits until the node's process answers Status on its client
// address; it fails at once if the process exits.
func (n *Node) WaitUp(ctx context.Context) error {
	for {
		if !n.Running() {
			return fmt.Errorf("node %s exited; see %s", n.ID, n.LogPath)
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := Status(sctx, n.ClientAddr)
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
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("node %s is already running", n.ID)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", n.ID, err)
	}
	args := append([]string{"--id", n.ID, "--data-dir", n.DataDir, "--raft-addr", n.RaftAddr,
		"--client-addr", n.ClientAddr, "--peers", c.peers, "--experts", fmt.Sprint(c.cfg.Experts)}, c.cfg.Extra...)
	cmd := exec.Command(c.cfg.Orderd, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() { // owned by the node: ends when the process exits
		cmd.Wait() //nolint:errcheck // exit status of a killed node is expected
		logf.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	return nil
}

// Signal sends sig to a running node's process.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("node %s is not running", n.ID)
	}
	return n.cmd.Process.Signal(sig)
}

// Running reports whether the node's process was started by us and has
// not exited.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() error { return n.stop(syscall.SIGKILL, 5*time.Second) }

// Terminate sends SIGTERM and waits up to timeout, then SIGKILLs.
func (n *Node) Terminate(timeout time.Duration) error { return n.stop(syscall.SIGTERM, timeout) }

func (n *Node) stop(sig syscall.Signal, timeout time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGCONT) //nolint:errcheck // a paused node must be able to die
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", n.ID, err)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill() //nolint:errcheck
		<-done
	}
	n.mu.Lock()
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	return nil
}

// Stop kills every node and waits for them.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Kill() //nolint:errcheck // best effort on teardown
	}
}

// Status asks one node for its status.
func Status(ctx context.Context, addr string) (wire.StatusInfo, error) {
	conn, err := wire.Dial(ctx, addr, wire.DialOptions{Timeout: time.Second})
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
		s, err := Status(sctx, n.ClientAddr)
		cancel()
		if err == nil && s.Role == "leader" && s.LeaderAddr == n.ClientAddr {
			return n
		}
	}
	return nil
}
