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
	"time"

	"github.com/hashicorp/go-hclog"
)

// Limits bound what one listener takes.
type Limits struct {
	// MaxConns bounds the open connections; past it a new one is handed to
	// Refuse and closed, and the ones open keep working. 0: no bound.
	MaxConns int
	// MaxConnsPerSource bounds those of one source address the same way,
	// for a port without identities (the seed's). 0: no bound.
	MaxConnsPerSource int
	// Refuse, if set, tells a connection over MaxConns why it is closed,
	// on a goroutine of its own (a TLS port shakes hands first, so that
	// the client reads an answer and not plaintext); at most
	// maxRefusing run at once, past that a connection is just closed.
	Refuse func(net.Conn)
}

// maxRefusing bounds the refusals being told at once.
const maxRefusing = 32

// Conns accepts connections on a listener and runs handle on each in a
// goroutine of its own.
type Conns struct {
	ln     net.Listener
	handle func(net.Conn)
	log    hclog.Logger
	limits Limits

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	bySource map[string]int // with MaxConnsPerSource
	closed   bool
	refused  uint64 // connections turned away at MaxConns
	refusing int    // refusals being told
	lastWarn time.Time
	wg       sync.WaitGroup
}

// Start begins accepting on ln. handle must return when its connection is
// closed; Conns closes the connection after handle returns.
func Start(ln net.Listener, log hclog.Logger, limits Limits, handle func(net.Conn)) *Conns {
	s := &Conns{ln: ln, handle: handle, log: log, limits: limits, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the listening address.
func (s *Conns) Addr() string { return s.ln.Addr().String() }

// Open is the number of open connections; Refused how many were turned
// away at MaxConns.
func (s *Conns) Open() (open int, refused uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.refused
}

// maxAcceptBackoff caps the pause after a failed accept.
const maxAcceptBackoff = time.Second

// acceptLoop accepts until the listener is closed. A failed accept (out
// of file descriptors: EMFILE, ENFILE; an aborted connection) pauses and
// tries again, as net/http does: the port must not stay open with nobody
// answering.
func (s *Conns) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				s.log.Warn("accept failed; retrying", "addr", s.Addr(), "error", err)
			} else {
				backoff = min(2*backoff, maxAcceptBackoff)
			}
			time.Sleep(backoff)
			continue
		}
		if backoff > 0 {
			s.log.Info("accepting again", "addr", s.Addr())
			backoff = 0
		}
		ok, full := s.track(c)
		if !ok {
			if full {
				s.refuse(c)
				continue
			}
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

// track registers c; it refuses it when closed, or (full) at MaxConns.
func (s *Conns) track(c net.Conn) (ok, full bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, false
	}
	src := ""
	if s.limits.MaxConnsPerSource > 0 {
		src = sourceOf(c)
	}
	if s.limits.MaxConns > 0 && len(s.conns) >= s.limits.MaxConns || src != "" && s.bySource[src] >= s.limits.MaxConnsPerSource {
		s.refused++
		warn := time.Since(s.lastWarn) > 10*time.Second
		if warn {
			s.lastWarn = time.Now()
		}
		refused := s.refused
		s.mu.Unlock()
		if warn {
			s.log.Warn("refusing connections: at the connection limit", "addr", s.Addr(), "max_conns", s.limits.MaxConns,
				"max_conns_per_source", s.limits.MaxConnsPerSource, "refused", refused)
		}
		return false, true
	}
	s.conns[c] = struct{}{}
	if src != "" {
		if s.bySource == nil {
			s.bySource = map[string]int{}
		}
		s.bySource[src]++
	}
	s.mu.Unlock()
	return true, false
}

// sourceOf is a connection's source address without its port.
func sourceOf(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// refuse tells a connection past MaxConns why it is closed, and closes it.
func (s *Conns) refuse(c net.Conn) {
	s.mu.Lock()
	tell := s.limits.Refuse != nil && s.refusing < maxRefusing && !s.closed
	if tell {
		s.refusing++
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if !tell {
		c.Close()
		return
	}
	go func() {
		defer s.wg.Done()
		defer func() {
			c.Close()
			s.mu.Lock()
			s.refusing--
			s.mu.Unlock()
		}()
		s.limits.Refuse(c)
	}()
}

func (s *Conns) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	if s.limits.MaxConnsPerSource > 0 {
		src := sourceOf(c)
		if s.bySource[src]--; s.bySource[src] <= 0 {
			delete(s.bySource, src)
		}
	}
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
