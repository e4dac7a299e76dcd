package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/wire"
)

// maxInFlight bounds the requests one connection may have in progress;
// past it the server stops reading from that connection (backpressure).
const maxInFlight = 1024

// handshakeTimeout is how long a new connection has to say hello.
const handshakeTimeout = 5 * time.Second

// server accepts orderly clients. Each connection gets a reader goroutine
// (its engineer, whose id it carries into orders) and a writer; each
// request runs in a goroutine of its own so that a slow linearizable read
// does not hold up the writes pipelined behind it.
type server struct {
	n   *Node
	ln  net.Listener
	log hclog.Logger

	nextEngineer atomic.Int32
	mu           sync.Mutex
	conns        map[net.Conn]struct{}
	closed       bool
	wg           sync.WaitGroup
}

func newServer(n *Node) (*server, error) {
	ln, err := net.Listen("tcp", n.cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("listen client %s: %w", n.cfg.ClientAddr, err)
	}
	s := &server{n: n, ln: ln, log: n.log.Named("server"), conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept failed; no longer taking clients", "error", err)
			}
			return
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// close stops accepting, closes every connection and waits for their
// goroutines to finish.
func (s *server) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	log := s.log.With("remote", c.RemoteAddr().String())
	if err := wire.ServerHandshake(c, handshakeTimeout); err != nil {
		log.Warn("refused connection", "error", err)
		return
	}
	engineer := s.nextEngineer.Add(1)
	fw := wire.NewFrameWriter(c, maxInFlight)
	fr := wire.NewFrameReader(c, s.n.cfg.MaxFrame)
	ctx, cancel := context.WithCancel(s.n.ctx)
	var reqs sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	defer func() {
		cancel()
		reqs.Wait()
		fw.Drain()
	}()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Warn("closing connection", "error", err)
				// The stream cannot be trusted any more; say why, then close.
				_ = fw.Send(wire.AppendFrame(nil, 0, wire.Errorf(wire.CodeBadRequest, "%v", err)))
			}
			return
		}
		req, err := wire.Decode(f.Type, f.Payload)
		if err != nil {
			log.Debug("bad request", "type", f.Type, "error", err)
			_ = fw.Send(wire.AppendFrame(nil, f.ID, wire.Errorf(wire.CodeBadRequest, "%v", err)))
			continue
		}
		sem <- struct{}{}
		reqs.Add(1)
		go func(id uint64) {
			defer func() { <-sem; reqs.Done() }()
			resp := s.n.handle(ctx, engineer, req)
			_ = fw.Send(wire.AppendFrame(nil, id, resp))
		}(f.ID)
	}
}
