package raftnode

import (
	"context"
	"sync"

	"orderly/wire"
)

// peerPool keeps one long-lived pipelined connection per peer address, for
// node-to-node calls (ReadIndex, Publish). A broken connection is redialed
// on next use.
type peerPool struct {
	dial   wire.DialOptions
	mu     sync.Mutex
	conns  map[string]*wire.Conn
	closed bool
}

func newPeerPool(dial wire.DialOptions) *peerPool {
	return &peerPool{dial: dial, conns: make(map[string]*wire.Conn)}
}

func (p *peerPool) get(ctx context.Context, addr string) (*wire.Conn, error) {
	p.mu.Lock()
	if c := p.conns[addr]; c != nil && c.Err() == nil {
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	// Dial outside the lock: a dead peer must not block calls to others.
	c, err := wire.Dial(ctx, addr, p.dial)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, wire.Errorf(wire.CodeUnavailable, "node shutting down")
	}
	if old := p.conns[addr]; old != nil {
		if old.Err() == nil { // another caller dialed first: use theirs
			c.Close()
			return old, nil
		}
		old.Close()
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peerPool) close() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
