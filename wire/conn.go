package wire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrConnLost means the connection broke while a request was in flight: its
// outcome is unknown.
var ErrConnLost = errors.New("wire: connection lost")

// DialOptions tune a client connection. The zero value is usable.
type DialOptions struct {
	Timeout  time.Duration // dial + handshake; default 3s
	MaxFrame uint32        // default DefaultMaxFrame
	// TLS, if set, gives the configuration for a mutual TLS connection to
	// the named server (pki.Source.ClientConfig); nil dials plaintext.
	TLS func(serverName string) *tls.Config
}

// Conn is a pipelined client connection: many goroutines may Call at once,
// each waiting only for its own response.
type Conn struct {
	nc   net.Conn
	fw   *FrameWriter
	done chan struct{} // closed when the read loop ends

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]call
	err     error // why the connection ended

	sweeping sync.Once      // Go starts the sweeper on first use
	sweeper  sync.WaitGroup // the sweeper, which ends with the read loop
}

type response struct {
	typ     Type
	payload []byte
}

// call is a request waiting for its answer: a Call's channel, or a Go's
// callback with its deadline. A call with a settled that gave up waiting
// stays, with neither, until its answer comes or the connection ends.
type call struct {
	ch       chan response
	done     func(Message, error)
	settled  func()
	req      Type
	deadline time.Time
}

// Dial connects to an orderly server and performs the handshake.
func Dial(ctx context.Context, addr string, opt DialOptions) (*Conn, error) {
	nc, err := dialServer(ctx, addr, &opt)
	if err != nil {
		return nil, err
	}
	return newConn(nc, opt.MaxFrame), nil
}

// Open performs the handshake on a connection made elsewhere (a node's
// peer stream on another node's Raft port) and returns it as a Conn;
// opt.TLS is not used: nc is already what it will be.
func Open(nc net.Conn, opt DialOptions) (*Conn, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 3 * time.Second
	}
	if err := ClientHandshake(nc, opt.Timeout); err != nil {
		return nil, err
	}
	return newConn(nc, opt.MaxFrame), nil
}

func newConn(nc net.Conn, maxFrame uint32) *Conn {
	c := &Conn{
		nc:      nc,
		fw:      NewFrameWriter(nc, 1024),
		done:    make(chan struct{}),
		pending: make(map[uint64]call),
	}
	go c.readLoop(NewFrameReader(nc, maxFrame))
	return c
}

// dialServer connects, with TLS if opt says so, and performs the
// handshake.
func dialServer(ctx context.Context, addr string, opt *DialOptions) (net.Conn, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 3 * time.Second
	}
	d := net.Dialer{Timeout: opt.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if opt.TLS != nil {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		tc := tls.Client(nc, opt.TLS(host))
		hctx, cancel := context.WithTimeout(ctx, opt.Timeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("dial %s: TLS handshake: %w", addr, err)
		}
		nc = tc
	}
	if err := ClientHandshake(nc, opt.Timeout); err != nil {
		nc.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return nc, nil
}

// Addr is the server's address.
func (c *Conn) Addr() string { return c.nc.RemoteAddr().String() }

func (c *Conn) readLoop(fr *FrameReader) {
	defer close(c.done)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			c.shut(fmt.Errorf("%w: %v", ErrConnLost, err))
			return
		}
		c.mu.Lock()
		p, ok := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		switch {
		case !ok: // a response to a cancelled call is dropped
		case p.ch != nil:
			p.ch <- response{typ: f.Type, payload: append([]byte(nil), f.Payload...)}
		case p.done != nil:
			p.done(answer(p.req, f.Type, f.Payload))
		}
		if ok && p.settled != nil {
			p.settled()
		}
	}
}

// answer decodes the response to a request of type req; an Error answer
// is returned as *Error.
func answer(req, typ Type, payload []byte) (Message, error) {
	m, err := Decode(typ, payload)
	if err != nil {
		return nil, fmt.Errorf("response to %s: %w", req, err)
	}
	if e, isErr := m.(*Error); isErr {
		return nil, e
	}
	return m, nil
}

// shut records why the connection ended and fails every pending call.
func (c *Conn) shut(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	pending, why := c.pending, c.err
	c.pending = map[uint64]call{}
	c.mu.Unlock()
	for _, p := range pending {
		switch {
		case p.ch != nil:
			close(p.ch)
		case p.done != nil:
			p.done(nil, why)
		}
		if p.settled != nil {
			p.settled()
		}
	}
	c.nc.Close()
	c.fw.Close()
}

// Err returns why the connection ended, or nil while it is usable.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection and waits for its goroutines.
func (c *Conn) Close() error {
	c.shut(errors.New("wire: connection closed"))
	<-c.done
	c.sweeper.Wait()
	return nil
}

// ErrNoAnswer means a call's timeout passed before its response came: its
// outcome is unknown. It wraps context.DeadlineExceeded.
var ErrNoAnswer = fmt.Errorf("wire: no answer in time: %w", context.DeadlineExceeded)

// Call sends req and waits for its response. An Error response is returned
// as *Error. If ctx ends or the connection breaks first, the outcome of the
// request is unknown.
func (c *Conn) Call(ctx context.Context, req Message) (Message, error) {
	return c.CallTimeout(ctx, req, 0)
}

// CallTimeout is Call that also gives up after timeout (0: no bound but
// ctx's). A timer is much cheaper than a context.WithTimeout derived from
// a busy parent, which every retrying client and the balancer would
// otherwise pay per attempt (docs/performance.md).
func (c *Conn) CallTimeout(ctx context.Context, req Message, timeout time.Duration) (Message, error) {
	return c.call(ctx, req, timeout, nil)
}

// CallSettled is CallTimeout that also calls settled once, as Go does,
// when the server is through with req: its answer came (also after the
// call gave up) or the connection ended; or at once if req was not sent.
func (c *Conn) CallSettled(ctx context.Context, req Message, timeout time.Duration, settled func()) (Message, error) {
	return c.call(ctx, req, timeout, settled)
}

func (c *Conn) call(ctx context.Context, req Message, timeout time.Duration, settled func()) (Message, error) {
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		if settled != nil {
			settled()
		}
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = call{ch: ch, settled: settled}
	c.mu.Unlock()

	if err := c.fw.Send(AppendFrame(nil, id, req)); err != nil {
		if c.forget(id) && settled != nil { // else the connection's end settled it
			settled()
		}
		return nil, fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, c.Err()
		}
		return answer(req.Type(), r.typ, r.payload)
	case <-ctx.Done():
		c.abandon(id)
		return nil, ctx.Err()
	case <-expired:
		c.abandon(id)
		return nil, ErrNoAnswer
	}
}

// abandon stops waiting for id's answer: the call is forgotten, or, with
// a settled to call, kept without a waiter until its answer comes.
func (c *Conn) abandon(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pending[id]; ok {
		c.abandonLocked(id, p)
	}
}

// abandonLocked is abandon of the pending call p; c.mu held.
func (c *Conn) abandonLocked(id uint64, p call) {
	if p.settled == nil {
		delete(c.pending, id)
		return
	}
	p.ch, p.done = nil, nil
	c.pending[id] = p
}

// ErrBusy is Go's refusal when the connection's send queue is full: the
// request was not sent.
var ErrBusy = errors.New("wire: connection's send queue is full")

// sweepEvery is how often Go's deadlines are checked: a late answer is
// reported at most this much after its timeout.
const sweepEvery = 50 * time.Millisecond

// Go sends req without waiting for its answer: done is called once with
// what Call would return (ErrNoAnswer if nothing came within timeout, the
// connection's end if it broke first). settled, if not nil, is called
// once when the server is through with req: its answer came (however
// late) or the connection ended; until then the server counts req
// against the connection's window (the balancer's share of that window
// frees a slot on it, not at a timeout). Both run on the
// connection's read goroutine (or the one that closed it, or the
// deadline sweeper), so they must not block. An error from Go itself
// means req was not sent (the connection is gone, or its queue is full:
// ErrBusy) and neither will be called. The balancer forwards orders this
// way: no goroutine of its own waits for the leader's answer.
func (c *Conn) Go(req Message, timeout time.Duration, done func(Message, error), settled func()) error {
	c.sweeping.Do(func() {
		c.sweeper.Add(1)
		go c.sweep()
	})
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = call{done: done, settled: settled, req: req.Type(), deadline: time.Now().Add(timeout)}
	c.mu.Unlock()
	if sent, err := c.fw.TrySend(AppendFrame(nil, id, req)); !sent {
		c.forget(id)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrConnLost, err)
		}
		return ErrBusy
	}
	return nil
}

// sweep ends Go's calls whose deadline passed, until the connection ends.
func (c *Conn) sweep() {
	defer c.sweeper.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var late []call
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.mu.Lock()
			for id, p := range c.pending {
				if p.done != nil && now.After(p.deadline) {
					late = append(late, p)
					c.abandonLocked(id, p)
				}
			}
			c.mu.Unlock()
			for i, p := range late {
				p.done(nil, ErrNoAnswer)
				late[i] = call{}
			}
			late = late[:0]
		}
	}
}

// forget drops a call that was not sent; false if the connection's end
// took it first.
func (c *Conn) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// CallAs is CallTimeout with the response type checked.
func CallAs[T Message](ctx context.Context, c *Conn, req Message, timeout time.Duration) (T, error) {
	m, err := c.CallTimeout(ctx, req, timeout)
	return As[T](req, m, err)
}

// As checks that m, the answer to req, is a T; it passes err through.
func As[T Message](req, m Message, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, fmt.Errorf("response to %s: unexpected %s", req.Type(), m.Type())
	}
	return t, nil
}

// Order places an order.
func (c *Conn) Order(ctx context.Context, o Order) (LaptopInfo, error) {
	return CallAs[LaptopInfo](ctx, c, o, 0)
}

// Get reads a record.
func (c *Conn) Get(ctx context.Context, g Get) (Record, error) { return CallAs[Record](ctx, c, g, 0) }

// Scan reads a page of records.
func (c *Conn) Scan(ctx context.Context, s Scan) (Records, error) {
	return CallAs[Records](ctx, c, s, 0)
}

// Status asks the server to describe itself.
func (c *Conn) Status(ctx context.Context) (StatusInfo, error) {
	return CallAs[StatusInfo](ctx, c, Status{}, 0)
}

// ReadIndex asks the leader for a read index.
func (c *Conn) ReadIndex(ctx context.Context) (uint64, error) {
	r, err := CallAs[ReadIndexReply](ctx, c, ReadIndex{}, 0)
	return r.Index, err
}

// Members lists the cluster's members.
func (c *Conn) Members(ctx context.Context) ([]Member, error) {
	r, err := CallAs[MemberList](ctx, c, Members{}, 0)
	return r.Members, err
}

// Admin sends an admin request (AddMember, RemoveMember, TransferLeader,
// Publish) that answers OK.
func (c *Conn) Admin(ctx context.Context, req Message) error {
	_, err := CallAs[OK](ctx, c, req, 0)
	return err
}
