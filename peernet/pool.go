package peernet

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"orderly/pki"
	"orderly/wire"
)

// ErrClosed: the pool is closed (its node is shutting down).
var ErrClosed = errors.New("peer streams closed: node shutting down")

// Pool keeps one long-lived, pipelined peer stream per node, named by its
// Raft address, which the Raft configuration (or --peers) gives before
// anything is published; a broken one is dialed again on next use.
type Pool struct {
	tls      *pki.Source // nil: plaintext (--insecure)
	maxFrame uint32

	mu      sync.Mutex
	conns   map[string]*wire.Conn
	dialing map[string]chan struct{} // closed when that dial ends
	closed  bool
}

func NewPool(src *pki.Source, maxFrame uint32) *Pool {
	return &Pool{tls: src, maxFrame: maxFrame, conns: map[string]*wire.Conn{}, dialing: map[string]chan struct{}{}}
}

// Get is the stream to the node whose Raft port is addr; a broken one is
// dialed again, once for all the callers that need it at that moment (a
// burst of dials would meet the other node's MaxPeerStreams).
// The stream is to member at addr: its certificate must name member.
func (p *Pool) Get(ctx context.Context, member, addr string) (*wire.Conn, error) {
	key := member + "@" + addr
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if c := p.conns[key]; c != nil && c.Err() == nil {
			p.mu.Unlock()
			return c, nil
		}
		if dialing, ok := p.dialing[key]; ok {
			p.mu.Unlock()
			select {
			case <-dialing: // look again: the stream, or a failure to try ourselves
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("peer %s: %w", addr, ctx.Err())
			}
		}
		done := make(chan struct{})
		p.dialing[key] = done
		p.mu.Unlock()
		// Dial outside the lock: a dead peer must not block calls to others.
		c, err := p.dial(ctx, member, addr)
		p.mu.Lock()
		delete(p.dialing, key)
		close(done)
		if err == nil && p.closed {
			c.Close()
			err = ErrClosed
		}
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if old := p.conns[key]; old != nil {
			old.Close()
		}
		p.conns[key] = c
		p.mu.Unlock()
		return c, nil
	}
}

func (p *Pool) dial(ctx context.Context, member, addr string) (*wire.Conn, error) {
	nc, err := Dial(ctx, p.tls, member, addr, []byte{StreamPeer})
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	c, err := wire.Open(nc, wire.DialOptions{MaxFrame: p.maxFrame})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
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
