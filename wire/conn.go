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
	pending map[uint64]chan response
	err     error // why the connection ended
}

type response struct {
	typ     Type
	payload []byte
}

// Dial connects to an orderly server and performs the handshake.
func Dial(ctx context.Context, addr string, opt DialOptions) (*Conn, error) {
	nc, err := dialServer(ctx, addr, &opt)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		nc:      nc,
		fw:      NewFrameWriter(nc, 1024),
		done:    make(chan struct{}),
		pending: make(map[uint64]chan response),
	}
	go c.readLoop(NewFrameReader(nc, opt.MaxFrame))
	return c, nil
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
		ch, ok := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if ok { // a response to a cancelled call is dropped
			ch <- response{typ: f.Type, payload: append([]byte(nil), f.Payload...)}
		}
	}
}

// shut records why the connection ended and fails every pending call.
func (c *Conn) shut(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	pending := c.pending
	c.pending = map[uint64]chan response{}
	c.mu.Unlock()
	for _, ch := range pending {
		close(ch)
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
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.fw.Send(AppendFrame(nil, id, req)); err != nil {
		c.forget(id)
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
		m, err := Decode(r.typ, r.payload)
		if err != nil {
			return nil, fmt.Errorf("response to %s: %w", req.Type(), err)
		}
		if e, isErr := m.(*Error); isErr {
			return nil, e
		}
		return m, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	case <-expired:
		c.forget(id)
		return nil, ErrNoAnswer
	}
}

func (c *Conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
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
