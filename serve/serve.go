// Package serve holds orderly's TCP servers. Conns is an accept loop that
// owns its connections: Close stops accepting, closes every open
// connection and waits until each connection's goroutine has returned.
// Orderly builds the orderly protocol's server on it (handshake, frames
// read, requests run by a Handler, answers written back, pipelined); the
// balancer's seed-protocol port uses Conns directly. The protocol itself
// is package wire, which imports nothing of orderly's.
package serve

import (
	"errors"
	"net"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Conns accepts connections on a listener and runs handle on each in a
// goroutine of its own.
type Conns struct {
	ln     net.Listener
	handle func(net.Conn)
	log    hclog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start begins accepting on ln. handle must return when its connection is
// closed; Conns closes the connection after handle returns.
func Start(ln net.Listener, log hclog.Logger, handle func(net.Conn)) *Conns {
	s := &Conns{ln: ln, handle: handle, log: log, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the listening address.
func (s *Conns) Addr() string { return s.ln.Addr().String() }

func (s *Conns) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept failed; no longer taking connections", "addr", s.Addr(), "error", err)
			}
			return
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(c)
		}()
	}
}

func (s *Conns) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Conns) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *Conns) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}
