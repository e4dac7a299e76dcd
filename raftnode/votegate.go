package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A node that lost its disk and comes back under its old id is still a
// voter in the cluster's membership, but its log is empty. If it voted
// before catching up, a candidate missing an entry that was committed on
// the old disk and the old leader could win with its vote, and the entry
// would be gone: the classic Raft disk-loss hazard (etcd's advice is to
// remove and re-add such a member for this reason). The vote gate closes
// it: such a node refuses every vote and pre-vote until its log reaches
// the commit index of the first leader that contacts it. If that leader
// is gone before the node caught up, the cluster waits for it (or for
// `--recover`) rather than elect someone who may lack acknowledged orders.

// catchingUpFile marks a data dir whose node must not vote yet. It is
// written before anything else on an empty data dir started with --peers,
// so a crash while catching up does not forget it.
const catchingUpFile = "orderly-catching-up"

// voteGate decides whether this node may vote. The Raft port asks it
// about each vote request (rpcscan.go); a refused one ends the stream,
// and the candidate counts no vote from here.
type voteGate struct {
	path string
	last atomic.Pointer[func() uint64] // Raft's LastIndex, set once Raft runs
	log  hclog.Logger

	closed atomic.Bool   // votes are refused
	target atomic.Uint64 // leader commit index to reach; 0 until a leader is heard

	mu sync.Mutex // serialises opening (file removal)
}

// newVoteGate reads the marker: a node that was catching up when it
// stopped is still catching up.
func newVoteGate(dataDir string, log hclog.Logger) (*voteGate, error) {
	g := &voteGate{path: filepath.Join(dataDir, catchingUpFile), log: log}
	switch _, err := os.Stat(g.path); {
	case err == nil:
		g.closed.Store(true)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("check %s: %w", g.path, err)
	}
	return g, nil
}

// hold refuses votes from now on, durably.
func (g *voteGate) hold() error {
	if err := writeFileSync(g.path, []byte("this node lost its log and must catch up before it votes\n")); err != nil {
		return fmt.Errorf("mark %s: %w", g.path, err)
	}
	g.closed.Store(true)
	return nil
}

// open lets the node vote: it has caught up, or it bootstraps a new cluster.
func (g *voteGate) open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", g.path, err)
	}
	if err := syncDir(filepath.Dir(g.path)); err != nil {
		return err
	}
	g.closed.Store(false)
	return nil
}

// sawLeaderCommit records the first leader commit index heard.
func (g *voteGate) sawLeaderCommit(idx uint64) {
	if idx > 0 && g.closed.Load() {
		g.target.CompareAndSwap(0, idx)
	}
}

// refuses reports whether a vote must be refused now, opening the gate
// once the log has reached the target.
func (g *voteGate) refuses() bool {
	if g.tryOpen() {
		return false
	}
	g.log.Warn("refusing a vote: this node lost its log and has not caught up", "target", g.target.Load())
	return true
}

// tryOpen opens the gate if the log has reached the target, and reports
// whether the gate is open.
func (g *voteGate) tryOpen() bool {
	if !g.closed.Load() {
		return true
	}
	t, last := g.target.Load(), g.last.Load()
	if t == 0 || last == nil || (*last)() < t {
		return false
	}
	if err := g.open(); err != nil {
		g.log.Error("caught up, but cannot clear the marker; still not voting", "error", err)
		return false
	}
	g.log.Info("caught up with the leader; this node votes again", "index", t)
	return true
}

// askLeaderCommit learns the gate's target: while the gate holds votes,
// it asks the leader this node follows for its commit index (its Status,
// over a peer stream); then it opens the gate once the log has reached
// it. Waiting for a vote request to open it left a caught-up node
// unready (/readyz) for as long as no election came.
func (n *Node) askLeaderCommit(ctx context.Context) {
	for !n.gate.tryOpen() {
		if addr, id := n.raft.LeaderWithID(); addr != "" && n.gate.target.Load() == 0 {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			a, err := n.probe(pctx, string(id), string(addr))
			cancel()
			if err == nil {
				n.gate.sawLeaderCommit(a.commitIndex)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeInterval):
		}
	}
}
