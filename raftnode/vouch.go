package raftnode

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"orderly/fsm"
)

// A node whose log is behind passes through old configurations as it
// catches up: a wiped node replaying the leader's log meets the entry
// that once removed a node that was added again later, maybe the leader
// itself, and would refuse the very leader that is catching it up. A new
// node knows no configuration at all. So a sender missing from this
// node's latest configuration is asked about of the others this node
// knows, the voters of that configuration and its --peers: if a majority
// of them answer that it is a member (at the address its requests give),
// it is. A stranger, or a member removed for good, is a member of none of
// theirs. One question at a time per sender, and its answer is kept for
// vouchFor: a stranger's flood costs at most one round a second.
const vouchFor = time.Second

// vouches holds the rounds asked, by sender.
type vouches struct {
	mu    sync.Mutex
	round map[string]*vouchRound
}

// vouchRound is one round of questions about a sender.
type vouchRound struct {
	done chan struct{} // closed when answered
	addr raft.ServerAddress
	at   time.Time
}

// vouched reports whether a majority of the nodes this node knows (the
// voters of cfg and its --peers, but itself and sender) say sender is a
// member, and at which address.
func (n *Node) vouched(sender string, cfg raft.Configuration) (raft.ServerAddress, bool) {
	n.vouches.mu.Lock()
	if n.vouches.round == nil {
		n.vouches.round = map[string]*vouchRound{}
	}
	if r := n.vouches.round[sender]; r != nil && (r.at.IsZero() || time.Since(r.at) < vouchFor) {
		n.vouches.mu.Unlock()
		select { // a round in flight: wait for its answer
		case <-r.done:
		case <-n.routines.Context().Done():
			return "", false
		}
		return r.addr, r.addr != ""
	}
	r := &vouchRound{done: make(chan struct{})}
	n.vouches.round[sender] = r
	n.vouches.mu.Unlock()

	r.addr = n.askAbout(sender, cfg)
	n.vouches.mu.Lock()
	r.at = time.Now()
	n.vouches.mu.Unlock()
	close(r.done)
	if r.addr != "" {
		n.log.Info("a node missing from this node's configuration is a member of a majority's", "node", sender, "address", r.addr)
	}
	return r.addr, r.addr != ""
}

// askAbout asks the voters of cfg and the --peers (but this node and
// sender) for sender's address as a member; "" unless a majority agree.
func (n *Node) askAbout(sender string, cfg raft.Configuration) raft.ServerAddress {
	asked := map[string]string{} // id -> raft address
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter {
			asked[string(s.ID)] = string(s.Address)
		}
	}
	for _, p := range n.cfg.Peers {
		if _, ok := asked[p.ID]; !ok {
			asked[p.ID] = p.RaftAddr
		}
	}
	delete(asked, n.cfg.ID)
	delete(asked, sender)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the askers left end at once
	ctx, cancel := context.WithTimeout(n.routines.Context(), time.Second)
	defer cancel()
	answers := make(chan raft.ServerAddress, len(asked))
	for member, addr := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- n.memberAddr(ctx, member, addr, sender)
		}()
	}
	votes := map[raft.ServerAddress]int{}
	for range asked {
		if a := <-answers; a != "" {
			if votes[a]++; votes[a]*2 > len(asked) {
				return a
			}
		}
	}
	return ""
}

// memberAddr asks member, whose Raft port is addr, for id's Raft address
// as a member of its latest configuration; "" if it is none or the node
// does not answer.
func (n *Node) memberAddr(ctx context.Context, member, addr, id string) raft.ServerAddress {
	c, err := n.peers.Get(ctx, member, addr)
	if err != nil {
		return ""
	}
	members, err := c.Members(ctx)
	if err != nil {
		return ""
	}
	for _, m := range members {
		if m.ID == id {
			return raft.ServerAddress(m.RaftAddr)
		}
	}
	return ""
}

// shardVouched is a shard replica's peernet.Rules.Vouched. A replica
// catching up meets old configurations too, and one restored from a
// snapshot taken before the shard's leader joined it leaves out the
// leader itself: in a 30-minute chaos run a move's new replica refused
// the only node that could catch it up, and the shard stopped. The shard
// map (committed in the meta group) is asked instead of the peers: it
// names the shard's replicas as of its epoch, the index of the shard's
// configuration its leader published, so it decides only for a replica
// that knows an older configuration than that.
func (n *Node) shardVouched(r *replica) func(string, raft.Configuration) (raft.ServerAddress, bool) {
	return func(sender string, _ raft.Configuration) (raft.ServerAddress, bool) {
		s, ok := n.fsm.Shard(r.shard)
		if !ok || !names(s, sender) { // before asking Raft: a stranger costs a map lookup
			return "", false
		}
		g := r.running.Load()
		f := g.Raft().GetConfiguration()
		if err := g.Await(f); err != nil {
			return "", false
		}
		meta, err := n.meta.latestConfiguration(n.routines.Context())
		if err != nil {
			return "", false
		}
		return mapNames(s, f.Index(), sender, meta)
	}
}

// mapNames is sender's Raft address if shard map entry s, newer than the
// configuration (at index known) a replica of the shard knows, names it
// a replica, and it is a member of the cluster (meta, whose address for
// it is every group's: one Raft port a node).
func mapNames(s fsm.SetShard, known uint64, sender string, meta raft.Configuration) (raft.ServerAddress, bool) {
	if s.Epoch <= known || !names(s, sender) {
		return "", false
	}
	for _, m := range meta.Servers {
		if string(m.ID) == sender {
			return m.Address, true
		}
	}
	return "", false
}

// names says whether shard map entry s lists node id among its replicas.
func names(s fsm.SetShard, id string) bool {
	return slices.ContainsFunc(s.Replicas, func(x fsm.ShardReplica) bool { return x.ID == id })
}
