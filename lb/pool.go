package lb

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/internal/routines"
	"orderly/wire"
)

// pool routes requests over the backends: it knows the leader from Status
// probes (the node that says it leads, at the highest term seen) and from
// NotLeader answers, and rotates reads over healthy followers.
//
// The backends it starts with are seeds: the leader's Status names every
// member and its published client address, and the pool follows it (as
// etcd's client syncs its endpoints), adding members that join and
// dropping those that leave.
type pool struct {
	backends atomic.Pointer[[]*backend] // copy on write: readers take no lock
	log      hclog.Logger
	every    time.Duration    // probe interval of a healthy backend
	timeout  time.Duration    // one probe's bound
	dial     wire.DialOptions // MaxFrame and TLS of backend connections

	mu         sync.Mutex
	leader     *backend // shard 0's
	leaderTerm uint64
	// shardLeaders are the leaders of the other shards (shards.go); shards
	// is the cluster's shard count, 0 until a prober learns it.
	shardLeaders map[uint32]*backend
	shards       atomic.Uint32
	routines     *routines.Group                 // the balancer's, set by run
	stops        map[*backend]context.CancelFunc // each backend's prober

	rr atomic.Uint64
}

func newPool(addrs []string, log hclog.Logger, every, timeout time.Duration, dial wire.DialOptions) *pool {
	p := &pool{log: log, every: every, timeout: timeout, dial: dial, stops: map[*backend]context.CancelFunc{},
		shardLeaders: map[uint32]*backend{}}
	list := make([]*backend, 0, len(addrs))
	for _, a := range addrs {
		list = append(list, newBackend(a))
	}
	p.backends.Store(&list)
	return p
}

// list is the current backends; do not modify it.
func (p *pool) list() []*backend { return *p.backends.Load() }

// run starts one prober per backend on rt; they stop when its context
// ends.
func (p *pool) run(rt *routines.Group) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.routines = rt
	for _, b := range p.list() {
		p.startProber(b)
	}
}

// startProber runs b's prober until ctx ends or b is dropped; p.mu held.
func (p *pool) startProber(b *backend) {
	ctx, cancel := context.WithCancel(p.routines.Context())
	p.stops[b] = cancel
	p.routines.Go(func(context.Context) { p.probeLoop(ctx, b) })
}

// probeLoop probes a healthy backend every p.every and a dead one with
// exponential backoff up to 2s, so a dead node costs little and a node
// that comes back returns to rotation within seconds.
func (p *pool) probeLoop(ctx context.Context, b *backend) {
	defer b.close()
	backoff := p.every
	for {
		st, ok := b.probe(ctx, p.timeout, p.dial)
		wait := p.every
		if ok {
			backoff = p.every
			p.observe(b, st.Role == "leader", st.Term)
			p.follow(st)
			p.probeShards(ctx, b)
		} else {
			p.lost(b)
			wait, backoff = backoff, min(backoff*2, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-time.After(wait):
		}
	}
}

// observe records what a probe of b said about leadership.
func (p *pool) observe(b *backend, leads bool, term uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case leads && (term >= p.leaderTerm || p.leader == nil):
		if p.leader != b {
			p.log.Info("leader", "addr", b.addr, "term", term)
		}
		p.leader, p.leaderTerm = b, term
	case !leads && p.leader == b:
		p.leader = nil
	}
}

// lost forgets b as leader when it stops answering.
func (p *pool) lost(b *backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leader == b {
		p.leader = nil
	}
	p.forgetShardLeader(b)
}

// hint follows a NotLeader answer: leaderAddr is the leader's client
// address as the cluster published it, or empty when unknown.
func (p *pool) hint(from *backend, leaderAddr string) {
	p.mu.Lock()
	if p.leader == from {
		p.leader = nil
	}
	var to *backend
	for _, b := range p.list() {
		if b.addr == leaderAddr {
			to = b
		}
	}
	if to != nil && to != from {
		p.leader = to
	}
	p.mu.Unlock()
	if to == nil {
		// The hint names no backend we know (or none): probe everyone now.
		p.pokeAll()
	}
}

func (p *pool) pokeAll() {
	for _, b := range p.list() {
		b.poke()
	}
}

func (p *pool) currentLeader() *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leader
}

// writer is the leader, if known and healthy.
func (p *pool) writer() *backend {
	if l := p.currentLeader(); l != nil && l.usable() != nil {
		return l
	}
	return nil
}

// reader picks the next healthy follower round-robin; the leader when no
// follower is healthy; any healthy node with Raft state when no leader is
// known.
func (p *pool) reader() *backend {
	leader := p.currentLeader()
	backends := p.list()
	n := len(backends)
	start := int(p.rr.Add(1))
	var fallback *backend
	for i := range n {
		b := backends[(start+i)%n]
		if b.usable() == nil {
			continue
		}
		role := b.role()
		if role == "empty" {
			continue
		}
		if b != leader && role == "follower" {
			return b
		}
		if fallback == nil || b == leader {
			fallback = b
		}
	}
	return fallback
}

// follow makes the backends the members' published client addresses, as
// a node's Status lists them. Any node's status adds what it names (its
// members, and the leader's address: a balancer whose seeds are all
// followers still finds the leader); only the leader's drops, since a
// follower's view of the configuration may lag. While some member has not
// published its address yet nothing is dropped: the pool never drops a
// node it cannot map, nor the last backend.
func (p *pool) follow(st wire.StatusInfo) {
	want := map[string]bool{}
	complete := st.Role == "leader"
	for _, m := range st.Members {
		if m.ClientAddr == "" {
			complete = false
			continue
		}
		want[m.ClientAddr] = true
	}
	if st.LeaderAddr != "" {
		want[st.LeaderAddr] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.routines == nil || p.routines.Context().Err() != nil {
		return
	}
	cur := p.list()
	have := map[string]bool{}
	next := make([]*backend, 0, len(want))
	var dropped []*backend
	for _, b := range cur {
		have[b.addr] = true
		if want[b.addr] || !complete {
			next = append(next, b)
		} else {
			dropped = append(dropped, b)
		}
	}
	var added []*backend
	for _, a := range slices.Sorted(maps.Keys(want)) {
		if !have[a] {
			b := newBackend(a)
			next, added = append(next, b), append(added, b)
		}
	}
	if len(added) == 0 && len(dropped) == 0 || len(next) == 0 {
		return
	}
	p.backends.Store(&next)
	for _, b := range added {
		p.log.Info("backend added: a member's published client address", "addr", b.addr)
		p.startProber(b)
	}
	for _, b := range dropped {
		p.log.Info("backend dropped: no longer a member", "addr", b.addr)
		if p.leader == b {
			p.leader = nil
		}
		p.forgetShardLeader(b)
		p.stops[b]()
		delete(p.stops, b)
	}
}
