package lb

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// pool routes requests over the backends: it knows the leader from Status
// probes (the node that says it leads, at the highest term seen) and from
// NotLeader answers, and rotates reads over healthy followers.
type pool struct {
	backends []*backend
	log      hclog.Logger
	every    time.Duration // probe interval of a healthy backend
	timeout  time.Duration // one probe's bound
	maxFrame uint32

	mu         sync.Mutex
	leader     *backend
	leaderTerm uint64

	rr atomic.Uint64
	wg sync.WaitGroup
}

func newPool(addrs []string, log hclog.Logger, every, timeout time.Duration, maxFrame uint32) *pool {
	p := &pool{log: log, every: every, timeout: timeout, maxFrame: maxFrame}
	for _, a := range addrs {
		p.backends = append(p.backends, newBackend(a))
	}
	return p
}

// run starts one prober per backend; they stop when ctx is done.
func (p *pool) run(ctx context.Context) {
	for _, b := range p.backends {
		p.wg.Add(1)
		go p.probeLoop(ctx, b)
	}
}

// wait waits for the probers and closes the connections.
func (p *pool) wait() {
	p.wg.Wait()
	for _, b := range p.backends {
		b.close()
	}
}

// probeLoop probes a healthy backend every p.every and a dead one with
// exponential backoff up to 2s, so a dead node costs little and a node
// that comes back returns to rotation within seconds.
func (p *pool) probeLoop(ctx context.Context, b *backend) {
	defer p.wg.Done()
	backoff := p.every
	for {
		st, ok := b.probe(ctx, p.timeout, p.maxFrame)
		wait := p.every
		if ok {
			backoff = p.every
			p.observe(b, st.Role == "leader", st.Term)
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
}

// hint follows a NotLeader answer: leaderAddr is the leader's client
// address as the cluster published it, or empty when unknown.
func (p *pool) hint(from *backend, leaderAddr string) {
	p.mu.Lock()
	if p.leader == from {
		p.leader = nil
	}
	var to *backend
	for _, b := range p.backends {
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
	for _, b := range p.backends {
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
	n := len(p.backends)
	start := int(p.rr.Add(1))
	var fallback *backend
	for i := range n {
		b := p.backends[(start+i)%n]
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
