package peernet

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// transport is the node's raft.Transport. Outbound RPCs go through one
// NetworkTransport that dials peers' Raft ports. Inbound Raft streams are
// sorted by the node certificate that opened them: each sender has an
// inbox, a NetworkTransport of its own that never dials, so every request
// is decoded once, by hashicorp/raft's own decoder, and comes out knowing
// whose certificate sent it. Before Raft sees a request, the decoded value
// (the very one Raft acts on) must pass the node's rules (Rules): a
// sender that is a member, a header that names it, no vote while the vote
// gate holds. A refused request is answered with an error; Raft never
// sees it.
//
// There is no second parser of Raft's stream to disagree with the first:
// a duplicate key, a key encoded as binary or an array, a second Size are
// whatever go-msgpack makes of them, and the check reads what it made.
type Transport struct {
	*drainingTransport          // outbound
	addr               net.Addr // the node's own Raft address
	rules              Rules
	log                hclog.Logger

	consumer chan raft.RPC
	closing  chan struct{}
	wg       sync.WaitGroup // the inboxes' forwarders

	mu        sync.Mutex
	inboxes   map[string]*inbox
	heartbeat func(raft.RPC) // Raft's fast path for heartbeats
	closed    bool
}

// NewTransport dials through d; inbound streams come from the Raft
// port's accept loop through deliver.
func NewTransport(d *Dialer, rules Rules, log hclog.Logger) *Transport {
	d.memberAt = rules.memberAt
	out := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: d, MaxPool: 4, Timeout: 10 * time.Second, Logger: log.Named("out")})
	return &Transport{drainingTransport: &drainingTransport{out}, addr: d.Addr(), rules: rules, log: log,
		consumer: make(chan raft.RPC), closing: make(chan struct{}), inboxes: map[string]*inbox{}}
}

// Consumer is raft.Transport's: every inbox's requests that passed.
func (t *Transport) Consumer() <-chan raft.RPC { return t.consumer }

// SetHeartbeatHandler is raft.Transport's.
func (t *Transport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.mu.Lock()
	t.heartbeat = cb
	t.mu.Unlock()
}

// Close closes the outbound transport and every inbox.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	boxes := t.inboxes
	t.mu.Unlock()
	for _, b := range boxes {
		b.trans.Close()
	}
	t.wg.Wait()
	return t.drainingTransport.Close()
}

// deliver hands an accepted Raft stream of sender (a node certificate's
// name; "" on a plaintext port) to its inbox, once the sender may open
// one. It returns when the stream is closed.
func (t *Transport) Deliver(sender string, c net.Conn) {
	if err := t.rules.admits(sender); err != nil {
		t.log.Warn("refused raft stream", "node", sender, "remote", c.RemoteAddr().String(), "error", err)
		return
	}
	b := t.inbox(sender)
	if b == nil {
		return // closing
	}
	oc := &ownedConn{Conn: c, done: make(chan struct{})}
	if !b.add(oc) {
		return
	}
	defer b.remove(oc)
	select {
	case b.conns <- oc:
	case <-b.closing:
		return
	}
	select { // Raft owns the stream now; it ends when either side closes it
	case <-oc.done:
	case <-b.closing:
	}
}

// inbox is sender's, made on its first stream.
func (t *Transport) inbox(sender string) *inbox {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if b := t.inboxes[sender]; b != nil {
		return b
	}
	b := &inbox{sender: sender, addr: t.addr, conns: make(chan net.Conn), closing: make(chan struct{}), open: map[*ownedConn]bool{}}
	b.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: b, MaxPool: 1, Timeout: 10 * time.Second, Logger: t.log.Named("in").With("node", sender)})
	b.trans.SetHeartbeatHandler(func(rpc raft.RPC) {
		if t.refused(b, rpc) {
			return
		}
		t.mu.Lock()
		hb := t.heartbeat
		t.mu.Unlock()
		if hb != nil {
			hb(rpc)
			return
		}
		t.forward(rpc)
	})
	t.inboxes[sender] = b
	t.wg.Add(1)
	go t.pass(b)
	return b
}

// pass checks each request of b's streams and forwards those that pass
// to Raft.
func (t *Transport) pass(b *inbox) {
	defer t.wg.Done()
	for {
		select {
		case rpc := <-b.trans.Consumer():
			if !t.refused(b, rpc) {
				t.forward(rpc)
			}
		case <-t.closing:
			return
		}
	}
}

// forward hands rpc to Raft, or answers it if the node is closing.
func (t *Transport) forward(rpc raft.RPC) {
	select {
	case t.consumer <- rpc:
	case <-t.closing:
		rpc.Respond(nil, raft.ErrTransportShutdown)
	}
}

// refused answers rpc with an error if the rules refuse it; a sender no
// longer a member loses its open streams too.
func (t *Transport) refused(b *inbox, rpc raft.RPC) bool {
	err := t.rules.check(b.sender, rpc.Command)
	if err == nil {
		return false
	}
	t.log.Warn("refused raft request", "node", b.sender, "request", fmt.Sprintf("%T", rpc.Command), "error", err)
	rpc.Respond(nil, err)
	if errors.Is(err, ErrNotMember) {
		b.cut()
	}
	return true
}

// inbox is one sender's raft.StreamLayer: it accepts only the streams
// deliver hands it, and never dials.
type inbox struct {
	sender string
	addr   net.Addr
	trans  *raft.NetworkTransport
	conns  chan net.Conn

	mu      sync.Mutex
	open    map[*ownedConn]bool
	closing chan struct{}
	closed  bool
}

// Accept is raft.StreamLayer's: the sender's next stream.
func (b *inbox) Accept() (net.Conn, error) {
	select {
	case c := <-b.conns:
		return c, nil
	case <-b.closing:
		return nil, net.ErrClosed
	}
}

// Close is raft.StreamLayer's: the inbox takes no more streams and closes
// those it has.
func (b *inbox) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	for c := range b.open {
		c.Close()
	}
	return nil
}

// Addr is the node's own Raft address.
func (b *inbox) Addr() net.Addr { return b.addr }

// Dial is never used: the outbound transport dials.
func (b *inbox) Dial(raft.ServerAddress, time.Duration) (net.Conn, error) {
	return nil, errors.New("raft inbox: does not dial")
}

func (b *inbox) add(c *ownedConn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.open[c] = true
	return true
}

func (b *inbox) remove(c *ownedConn) {
	b.mu.Lock()
	delete(b.open, c)
	b.mu.Unlock()
}

// cut closes the sender's open streams; it may open new ones, which the
// rules judge again.
func (b *inbox) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.open {
		c.Close()
	}
}

// ownedConn tells deliver when Raft has closed its stream.
type ownedConn struct {
	net.Conn
	done chan struct{}
	once sync.Once
}

func (c *ownedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}
