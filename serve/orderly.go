package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/wire"
)

// Handler answers one request that the caller's role allows. It must not
// panic and must return when ctx is done.
type Handler func(ctx context.Context, from Caller, req wire.Message) wire.Message

// StreamHandler serves a Watch, answered by a stream: it sends frames
// with send, which blocks while the client has not read the connection's
// reply budget, until ctx ends (the client went away) or it has a last
// word, which it returns (nil: none). The connection then closes: a
// watching connection carries nothing else. The server has checked the
// Watch's fields.
type StreamHandler func(ctx context.Context, from Caller, w wire.Watch, send func(context.Context, wire.Message) error) wire.Message

// streamSendBuffer caps the kernel's send buffer of a streaming
// connection (it would otherwise grow to megabytes for a client that does
// not read): with the reply budget, it bounds what a watcher holds, and
// a watcher that stops reading is soon blocked, then cut off.
const streamSendBuffer = 256 << 10

// capSendBuffer sets c's TCP send buffer, under TLS too.
func capSendBuffer(c net.Conn, size int) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.SetWriteBuffer(size) //nolint:errcheck // a bigger buffer only delays the cut-off
	}
}

// streamLastWord bounds how long a stream's last frames may take to leave
// before its connection closes: a watcher cut off for not reading would
// otherwise hold it until the write timeout.
const streamLastWord = time.Second

// Caller is who sent a request.
type Caller struct {
	// ConnID numbers the connection (a node uses it as the engineer id of
	// the orders it carries).
	ConnID int32
	// Name is the common name of the client's certificate (a node's id);
	// empty on a plaintext port.
	Name string
	// Role is what the request may do: the certificate's, or for a
	// request a balancer forwards, its client's (wire.AsRole); RoleNone on
	// a plaintext port, where nothing is checked.
	Role wire.Role
	// MaxRole is the highest client role the certificate may act as with
	// wire.AsRole (pki.Identity.MaxRole).
	MaxRole wire.Role
	// Forwarder is the certificate's own role when the request came in a
	// wire.AsRole (Role is then the client's): a node asks whether a
	// forwarding node is a member.
	Forwarder wire.Role
}

// maxIdleWorkers bounds the request goroutines a server keeps parked
// between requests; past it a finished worker exits.
const maxIdleWorkers = 512

// Options configure a Server.
type Options struct {
	MaxFrame uint32 // largest request frame; 0 is wire.DefaultMaxFrame
	// Bounds: a zero MaxConns, IdleTimeout, FrameTimeout or RateLimit is
	// no bound; a zero MaxInFlight is 1024, MaxReplyBytes 1 MiB,
	// HandshakeTimeout 5 s.
	Bounds
	// RequestTimeout, if set, bounds each request: the handler's ctx ends
	// RequestTimeout (up to deadlineSlot more) after the request was read.
	RequestTimeout time.Duration
	// TLS, if set, makes the port mutual TLS: a client without a
	// certificate from the CA is refused at the handshake, before any
	// byte of the orderly protocol is read, and its certificate's role
	// bounds what it may ask. Without it (--insecure) nothing is checked:
	// every client may send every request.
	TLS *tls.Config
	// Stream, if set, serves the requests answered by a stream of frames
	// (wire.Watch); without it they are refused.
	Stream StreamHandler
	// Async, if set, is offered each request before a worker is: it may
	// take it (true) and answer later by calling answer once, from any
	// goroutine; answer does not block. A request it leaves runs on a
	// worker through the Handler. The balancer forwards orders so: no
	// goroutine of its own waits for the leader's answer.
	Async func(ctx context.Context, from Caller, req wire.Message, answer func(wire.Message)) bool
	// NodesForward accepts wire.AsRole from node certificates: a node's
	// peer server (its HTTP API's orders forwarded to the leader; raftnode
	// checks that the node is a member). Client ports, a node's and a
	// balancer's, leave it off: a node certificate gains no client role
	// there.
	NodesForward bool
	// Observe, if set, is told of every request a handler answered, with
	// the time from its read to its answer (metrics).
	Observe func(req wire.Message, took time.Duration, resp wire.Message)
	Logger  hclog.Logger
}

// Server serves the orderly protocol. Each connection gets a reader and a
// writer goroutine; each request runs on a worker goroutine of its own
// (reused from request to request, see workers), so a slow
// request (a linearizable read waiting for its index) does not hold up the
// requests pipelined behind it. Past MaxInFlight the server stops reading
// from that connection: backpressure, not unbounded memory.
type Server struct {
	opt     Options
	h       Handler
	conns   *Conns
	work    *workers
	ctx     context.Context
	cancel  context.CancelFunc
	nextID  atomic.Int32
	clients *clients
	frames  *wire.FrameBudget // nil: not bounded
}

// Orderly starts serving on ln.
func Orderly(ln net.Listener, h Handler, opt Options) *Server {
	s := NewOrderly(h, opt)
	s.conns = Start(ln, s.opt.Logger, Limits{MaxConns: s.opt.MaxConns, Refuse: s.refuseBusy}, s.serveConn)
	return s
}

// NewOrderly makes a server without a listener: its connections come
// through ServeConn, already authenticated (a node's peer streams, which
// the Raft port accepts). opt.TLS is not used.
func NewOrderly(h Handler, opt Options) *Server {
	if opt.MaxFrame == 0 {
		opt.MaxFrame = wire.DefaultMaxFrame
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 1024
	}
	if opt.MaxReplyBytes <= 0 {
		opt.MaxReplyBytes = 1 << 20
	}
	if opt.HandshakeTimeout <= 0 {
		opt.HandshakeTimeout = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	s := &Server{opt: opt, h: h, work: newWorkers(maxIdleWorkers), clients: newClients(opt.Bounds)}
	if opt.MaxFrameMemory > 0 {
		s.frames = wire.NewFrameBudget(opt.MaxFrameMemory)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Conns is the number of open connections and how many were refused, at
// MaxConns or at MaxConnsPerClient.
func (s *Server) Conns() (open int, refused uint64) {
	open, refused = s.conns.Open()
	return open, refused + s.clients.refusedConns()
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.conns.Addr() }

// Close cancels every request in progress, closes every connection and
// waits for their goroutines (those handed to ServeConn are their
// caller's to close).
func (s *Server) Close() {
	s.cancel()
	if s.conns != nil {
		s.conns.Close()
	}
	s.work.close()
}

// refuseBusy answers a connection past MaxConns "busy" in the port's own
// protocol: on a TLS port after a TLS handshake (bounded by a second), so
// the client reads the answer and not plaintext; a client without a
// certificate of the cluster gets the handshake's TLS alert instead.
func (s *Server) refuseBusy(c net.Conn) {
	if s.opt.TLS != nil {
		tc, _, err := TLSHandshake(c, s.opt.TLS, time.Second)
		if err != nil {
			return
		}
		c = tc
	}
	wire.RefuseBusy(c)
}

func (s *Server) serveConn(c net.Conn) {
	who := Caller{Role: wire.RoleNone} // plaintext: unchecked
	if s.opt.TLS != nil {
		tc, id, err := TLSHandshake(c, s.opt.TLS, s.opt.HandshakeTimeout)
		if err != nil {
			s.opt.Logger.Warn("refused connection", "remote", c.RemoteAddr().String(), "error", err)
			return
		}
		c, who.Name, who.Role, who.MaxRole = tc, id.Name, id.Role, id.MaxRole
	}
	s.ServeConn(c, who)
}

// ServeConn serves the orderly protocol on c for who until the
// connection ends; the caller closes c. who.Role is checked as a
// certificate's would be unless it is RoleNone (a plaintext port).
func (s *Server) ServeConn(c net.Conn, who Caller) {
	log := s.opt.Logger.With("remote", c.RemoteAddr().String())
	if who.Role != wire.RoleNone {
		log = log.With("client", who.Name, "role", who.Role)
	}
	bucket, err := s.clients.attach(who)
	if err != nil {
		if _, quiet := err.(errQuiet); !quiet {
			log.Warn("refused connection", "error", err)
		}
		wire.RefuseBusy(c)
		return
	}
	defer s.clients.detach(who, bucket)
	if err := wire.ServerHandshake(c, s.opt.HandshakeTimeout); err != nil {
		log.Warn("refused connection", "error", err)
		return
	}
	who.ConnID = s.nextID.Add(1)
	budget := newReplyBudget(s.opt.MaxReplyBytes, bucket.replies)
	fw := wire.NewFrameWriter(c, s.opt.MaxInFlight)
	fw.OnWritten(func(n int) { budget.release(int64(n)) })
	if s.opt.IdleTimeout > 0 {
		fw.WriteTimeout(c, s.opt.IdleTimeout)
	}
	fr := wire.NewFrameReader(c, s.opt.MaxFrame)
	fr.SetTimeouts(c, s.opt.IdleTimeout, s.opt.FrameTimeout)
	fr.SetBudget(s.frames)
	defer fr.Release()
	ctx, cancel := context.WithCancel(s.ctx)
	var reqs sync.WaitGroup
	sem := make(chan struct{}, s.opt.MaxInFlight)
	defer func() {
		cancel()
		reqs.Wait()
		fw.Drain()
		budget.settle()
	}()
	deadlines := deadlineSlots{parent: ctx, timeout: s.opt.RequestTimeout}
	// send queues a frame of the reader's own (an error answer) within the
	// reply budget.
	send := func(frame []byte) {
		if budget.acquire(ctx, fw.Stopped(), int64(len(frame))) == nil {
			_ = fw.Send(frame)
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, syscall.ECONNRESET) {
				log.Debug("client reset the connection")
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				log.Info("closing connection: idle, or a frame that did not arrive in time", "error", err)
				return
			}
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
			send(wire.AppendFrame(nil, f.ID, wire.Errorf(wire.CodeBadRequest, "%v", err)))
			continue
		}
		from := who
		if from, req, err = Permit(from, req, who.Role != wire.RoleNone); err == nil && from.Forwarder == wire.RoleNode && !s.opt.NodesForward {
			err = wire.Errorf(wire.CodePermissionDenied, "node %q may forward requests to the nodes of its cluster only", from.Name)
		}
		if err != nil {
			log.Debug("permission denied", "type", req.Type(), "error", err)
			send(wire.AppendFrame(nil, f.ID, wire.Reply(nil, err)))
			continue
		}
		if !bucket.allow(who.Role) {
			send(wire.AppendFrame(nil, f.ID, wire.Errorf(wire.CodeOverloaded, "rate limit: %s may send %g requests per second", who.Name, s.opt.RateLimit)))
			continue
		}
		if w, ok := req.(wire.Watch); ok {
			if s.opt.Stream == nil {
				send(wire.AppendFrame(nil, f.ID, wire.Errorf(wire.CodeBadRequest, "%s is not served here", req.Type())))
				continue
			}
			if err := w.Validate(); err != nil {
				send(wire.AppendFrame(nil, f.ID, wire.Errorf(wire.CodeBadRequest, "watch: %v", err)))
				continue
			}
			if !bucket.watch() {
				send(wire.AppendFrame(nil, f.ID, wire.Errorf(wire.CodeOverloaded, "client %s has %d watch streams open (--max-watchers-per-client)",
					who.Name, s.opt.MaxWatchersPerClient)))
				continue
			}
			defer bucket.unwatch()
			cancel() // requests in flight end; the connection is the stream's now
			reqs.Wait()
			s.stream(c, fr, fw, budget, from, f.ID, w)
			return
		}
		// The reply's bytes are reserved before the request runs: a client
		// that does not read its replies stops being read.
		reserved := replyBound(req)
		if budget.acquire(ctx, fw.Stopped(), reserved) != nil {
			return
		}
		if bucket.take(ctx) != nil {
			return
		}
		sem <- struct{}{}
		reqs.Add(1)
		fid := f.ID
		rctx := deadlines.get()
		var read time.Time
		if s.opt.Observe != nil {
			read = time.Now()
		}
		// frameOf encodes the answer (and tells Observe of it).
		frameOf := func(resp wire.Message) []byte {
			if s.opt.Observe != nil {
				s.opt.Observe(req, time.Since(read), resp)
			}
			return wire.AppendFrame(nil, fid, resp)
		}
		// deliver queues the answer within the reply budget, waiting for
		// room in either, and frees the request's slot.
		deliver := func(frame []byte) {
			defer func() { <-sem; bucket.done(); reqs.Done() }()
			if n := int64(len(frame)); n > reserved {
				if budget.acquire(ctx, fw.Stopped(), n-reserved) != nil {
					return
				}
			} else {
				budget.release(reserved - n)
			}
			_ = fw.Send(frame)
		}
		if s.opt.Async != nil && s.opt.Async(rctx, from, req, func(resp wire.Message) {
			// Called from a goroutine that serves other connections too:
			// it never waits here. An answer that would wait (bigger than
			// reserved, or a full queue) goes to a worker.
			frame := frameOf(resp)
			if n := int64(len(frame)); n <= reserved {
				if sent, err := fw.TrySend(frame); sent || err != nil {
					budget.release(reserved - n)
					<-sem
					bucket.done()
					reqs.Done()
					return
				}
			}
			s.work.run(func() { deliver(frame) })
		}) {
			continue
		}
		s.work.run(func() { deliver(frameOf(s.h(rctx, from, req))) })
	}
}

// stream serves one streaming request on c until the handler ends or the
// client goes: anything the client sends after it (or its leaving) ends
// the stream. The connection's idle bound no longer applies to the
// reads (a watcher sends nothing); its write bound does, and the reply
// budget bounds what a watcher that does not read can make the server
// hold.
func (s *Server) stream(c net.Conn, fr *wire.FrameReader, fw *wire.FrameWriter, budget *replyBudget, from Caller, id uint64, w wire.Watch) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	fr.SetTimeouts(c, 0, s.opt.FrameTimeout)
	c.SetReadDeadline(time.Time{}) //nolint:errcheck // a failed clear fails the read, which ends the stream
	capSendBuffer(c, streamSendBuffer)
	reader := make(chan struct{})
	go func() {
		defer close(reader)
		defer cancel()
		_, _ = fr.ReadFrame() // nothing is expected: a frame, EOF or an error ends the stream
	}()
	send := func(sctx context.Context, m wire.Message) error {
		frame := wire.AppendFrame(nil, id, m)
		if err := budget.acquire(sctx, fw.Stopped(), int64(len(frame))); err != nil {
			return err
		}
		return fw.Send(frame)
	}
	if last := s.opt.Stream(ctx, from, w, send); last != nil {
		_ = fw.Send(wire.AppendFrame(nil, id, last))
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		fw.Drain()
	}()
	t := time.NewTimer(streamLastWord)
	select {
	case <-drained:
	case <-t.C:
	}
	t.Stop()
	c.Close() // also ends a write the client never read, and so the drain
	<-drained
	<-reader
}

// deadlineSlot is how long requests of one connection share a deadline.
const deadlineSlot = 100 * time.Millisecond

// deadlineSlots hands out the contexts that bound a connection's requests.
// Requests read within the same deadlineSlot share one context, ending
// timeout after the slot: a context per request registered itself with the
// connection's context under its lock and started a timer, about 9% of a
// leader's CPU at 34,000 orders/s. A slot's context is never cancelled
// early (its requests may still run); its deadline releases it. Only the
// connection's reader goroutine calls get.
type deadlineSlots struct {
	parent  context.Context
	timeout time.Duration

	cur    context.Context
	cancel context.CancelFunc // kept for vet; the deadline does the work
	end    time.Time
}

func (d *deadlineSlots) get() context.Context {
	if d.timeout <= 0 {
		return d.parent
	}
	now := time.Now()
	if d.cur == nil || !now.Before(d.end) {
		d.end = now.Add(deadlineSlot)
		d.cur, d.cancel = context.WithDeadline(d.parent, d.end.Add(d.timeout))
	}
	return d.cur
}
