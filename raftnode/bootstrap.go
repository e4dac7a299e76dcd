package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"orderly/wire"
)

// A node that starts with an empty data dir and --peers must not bootstrap
// a cluster that already exists. Bootstrapping writes the --peers
// membership at term 1; among nodes that all lost their data (or whose
// survivor was rebuilt with --recover) that elects a leader with an empty
// log, a second cluster under the same addresses, whose higher terms can
// make the real one's survivor follow it and drop its orders. This is what
// happens if, after `--recover`, the lost nodes are started again with
// their usual flags and new disks (`docker compose up` does exactly that).
//
// So before bootstrapping, the node asks every other peer for its Raft
// term and, of a peer that has one, its last log index, the way Consul's
// servers ask each other before bootstrap_expect takes effect. A peer
// whose log goes past the bootstrap entry (index 1) has history: a cluster
// exists, and this node does not bootstrap; it waits, with its votes held
// (votegate.go), to be caught up by a leader whose membership lists it, or
// added with `orderctl members add`. When every other peer answers and
// none has history (all empty, or bootstrapped a moment ago by the same
// --peers: a new cluster) it bootstraps. Peers that do not answer are
// waited for: bootstrapping without them is how the second cluster is
// born.

// probeInterval is the pause between rounds of asking the peers.
const probeInterval = 500 * time.Millisecond

// probeTimeout bounds one peer's answer.
const probeTimeout = 2 * time.Second

// peerTerm is one peer's answer to a probe.
type peerTerm struct {
	id      string
	term    uint64
	lastLog uint64
	err     error
}

// bootstrapDecision reads one round of answers from every other peer:
// bootstrap when all are empty; join when any has state; wait otherwise.
type bootstrapDecision int

const (
	decideWait bootstrapDecision = iota
	decideBootstrap
	decideJoin
)

func decide(answers []peerTerm) (bootstrapDecision, string) {
	var missing []string
	for _, a := range answers {
		if a.err == nil && a.lastLog > 1 {
			return decideJoin, fmt.Sprintf("peer %s already has a Raft log (term %d, last index %d)", a.id, a.term, a.lastLog)
		}
		if a.err != nil {
			missing = append(missing, a.id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return decideWait, "no answer yet from " + strings.Join(missing, ", ")
	}
	return decideBootstrap, "no peer has history: a new cluster"
}

// probeRound asks every other peer at once for its term and last log
// index (its Status, over a peer stream) and returns when all have answered or
// failed, each within probeTimeout.
func (n *Node) probeRound(peers []Peer) []peerTerm {
	out := make(chan peerTerm, len(peers))
	for _, peer := range peers {
		go func() {
			ctx, cancel := context.WithTimeout(n.routines.Context(), probeTimeout)
			defer cancel()
			a, err := n.probe(ctx, peer.ID, peer.RaftAddr)
			out <- peerTerm{id: peer.ID, term: a.term, lastLog: a.lastIndex, err: err}
		}()
	}
	answers := make([]peerTerm, 0, len(peers))
	for range peers {
		answers = append(answers, <-out)
	}
	return answers
}

// bootstrapWhenSafe runs on a node with an empty data dir and --peers; it
// probes the other peers until it can decide, then bootstraps or leaves
// the node waiting to be added.
func (n *Node) bootstrapWhenSafe(ctx context.Context) {
	var others []Peer
	var servers []raft.Server
	for _, p := range n.cfg.Peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
		if p.ID != n.cfg.ID {
			others = append(others, p)
		}
	}
	lastWait := time.Time{}
	for {
		decision, why := decide(n.probeRound(others))
		switch decision {
		case decideBootstrap:
			// The gate opens first: a crash before the bootstrap is
			// written leaves an empty dir, which decides again.
			if err := n.gate.open(); err != nil {
				n.log.Error("cannot bootstrap", "error", err)
				return
			}
			// The meta group last: until it has state the node decides
			// again on its next start, and bootstraps what it had not.
			for _, r := range n.dataReplicas() {
				if r.meta {
					continue
				}
				if err := n.bootstrapShard(r); err != nil {
					n.log.Error("bootstrap shard failed", "shard", r.shard, "error", err)
					return
				}
			}
			if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				if errors.Is(err, raft.ErrCantBootstrap) {
					n.log.Info("not bootstrapping: this node already has Raft state")
					return
				}
				n.log.Error("bootstrap cluster failed", "error", err)
				return
			}
			n.log.Info("bootstrapped cluster", "peers", clusterID(n.cfg.Peers), "reason", why)
			return
		case decideJoin:
			n.log.Warn("not bootstrapping: the cluster exists; this node will not vote until a leader has caught it up, and waits for one whose membership lists it, or for `orderctl members add`",
				"reason", why)
			n.decideShards(ctx)
			return
		}
		if time.Since(lastWait) > 10*time.Second {
			n.log.Info("waiting for every peer to answer before bootstrapping: a new cluster needs all of --peers up once", "reason", why)
			lastWait = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeInterval):
		}
	}
}

// decideShards decides, shard by shard, for a node that found the meta
// group already there: it may have lost the race to bootstrap a new
// cluster rather than its disk. A shard whose other replicas hold
// nothing past their bootstrap entry has committed nothing this node
// could lack: its replica bootstraps with them and votes (a shard of two
// replicas could elect no one without it). A shard with history keeps
// its replica's votes held until it has caught up (askShardLeaderCommit).
func (n *Node) decideShards(ctx context.Context) {
	undecided := n.dataReplicas()
	for len(undecided) > 0 {
		var next []*replica
		for _, r := range undecided {
			if r.meta || !r.gate.closed.Load() {
				continue
			}
			fresh, known := n.shardIsNew(ctx, r.shard)
			switch {
			case !known:
				next = append(next, r)
			case fresh:
				if err := n.bootstrapShard(r); err != nil {
					n.log.Error("bootstrap shard failed", "shard", r.shard, "error", err)
				}
			}
		}
		undecided = next
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeInterval):
		}
	}
}

// bootstrapShard opens r's votes and bootstraps its shard with the
// placement of a new cluster; a replica with Raft state already is left
// as it is.
func (n *Node) bootstrapShard(r *replica) error {
	if err := r.gate.open(); err != nil {
		return fmt.Errorf("open the votes: %w", err)
	}
	err := r.raft().BootstrapCluster(raft.Configuration{Servers: n.placement(r.shard)}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return err
	}
	return nil
}

// shardIsNew asks the other replicas of shard id's placement whether any
// holds more than its bootstrap entry; known is false while one of them
// does not answer.
func (n *Node) shardIsNew(ctx context.Context, id uint32) (fresh, known bool) {
	for _, s := range n.placement(id) {
		if string(s.ID) == n.cfg.ID {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		c, err := n.peers.Get(pctx, string(s.ID), string(s.Address))
		var st wire.StatusInfo
		if err == nil {
			st, err = wire.CallAs[wire.StatusInfo](pctx, c, wire.ShardStatus{Shard: id}, 0)
		}
		cancel()
		if err != nil {
			return false, false
		}
		if st.LastIndex > 1 {
			return false, true
		}
	}
	return true, true
}
