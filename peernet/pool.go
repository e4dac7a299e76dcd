package peernet

import (
	"context"
	"fmt"
	"sync"

	"orderly/pki"
	"orderly/wire"
)

// Pool keeps one long-lived, pipelined peer stream per node, named by its
// Raft address, which the Raft configuration (or --peers) gives before
// anything is published; a broken one is dialed again on next use.
type Pool struct {
	tls      *pki.Source // nil: plaintext (--insecure)
	maxFrame uint32

	mu     sync.Mutex
	conns  map[string]*wire.Conn
	closed bool
}

func NewPool(src *pki.Source, maxFrame uint32) *Pool {
	return &Pool{tls: src, maxFrame: maxFrame, conns: make(map[string]*wire.Conn)}
}

// Get is the stream to the node whose Raft port is addr; a broken one is
// dialed again.
func (p *Pool) Get(ctx context.Context, addr string) (*wire.Conn, error) {
	p.mu.Lock()
	if c := p.conns[addr]; c != nil && c.Err() == nil {
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	// Dial outside the lock: a dead peer must not block calls to others.
	nc, err := Dial(ctx, p.tls, addr, []byte{StreamPeer})
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	c, err := wire.Open(nc, wire.DialOptions{MaxFrame: p.maxFrame})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("peer %s: %w", addr, err)
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

func (p *Pool) Close() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
