package peernet

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// The Raft port carries two kinds of stream, told apart by the first byte
// the dialer writes (as Consul's RPC mux does): hashicorp/raft's own RPCs,
// untouched, and peer streams, on which nodes call each other in the
// orderly protocol (pool.go). Both run over mutual TLS: only a node
// certificate is let in; its Raft streams go to the transport's inbox for
// that node (transport.go), which checks every request, and its peer
// streams to the node's peer server, which checks its role and its
// membership.
const (
	StreamRaft byte = 'R'
	StreamPeer byte = 'P'
	// StreamGroup is a Raft stream of group N (4 bytes of N, big-endian,
	// follow): one port carries the streams of every group a node hosts.
	// Group 0's streams are StreamRaft, as before there were groups.
	StreamGroup byte = 'G'
)

// GroupID names a Raft group on the port.
type GroupID uint32

// streamHeader is what a dialer writes first on a Raft stream of group.
func streamHeader(group GroupID) []byte {
	if group == 0 {
		return []byte{StreamRaft}
	}
	return binary.BigEndian.AppendUint32([]byte{StreamGroup}, uint32(group))
}

// Port is the Raft port's listener: it takes a stream's TLS handshake
// and kind byte and hands the stream on.
type Port struct {
	conns *serve.Conns
	tls   *pki.Source // nil: plaintext (--insecure)
	log   hclog.Logger
	// handshake bounds a stream's TLS handshake and first byte.
	handshake time.Duration

	raftStream func(sender string, group GroupID, c net.Conn) // returns when the stream ends
	peerStream func(sender string, c net.Conn)                // returns when the stream ends

	mu      sync.Mutex
	peers   map[string]int // open peer streams per sender
	opening map[string]int // connections per source address not yet through TLS and the header
}

// MaxOpening bounds the connections of one source address that have not
// yet finished their TLS handshake and stream header: anyone who reaches
// the port may hold those, each for up to the handshake timeout, and
// without a bound a few sources could hold all of --max-conns that the
// members' Raft streams need. A node opens a few at a time.
const MaxOpening = 32

// MaxPeerStreams bounds one node certificate's open peer streams on a
// port. A node keeps one to each peer (pool.go); a certificate of the CA
// that is no member (or no longer one) may hold these few, never the
// port's connections that its members' Raft streams need.
const MaxPeerStreams = 8

// Listen listens on addr and starts accepting; maxConns bounds
// the streams open at once.
func Listen(addr string, src *pki.Source, maxConns int, handshake time.Duration, raftStream func(string, GroupID, net.Conn),
	peerStream func(string, net.Conn), log hclog.Logger) (*Port, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen raft %s: %w", addr, err)
	}
	p := &Port{tls: src, log: log, handshake: handshake, raftStream: raftStream, peerStream: peerStream,
		peers: map[string]int{}, opening: map[string]int{}}
	p.conns = serve.Start(ln, log, serve.Limits{MaxConns: maxConns}, p.serveConn)
	return p, nil
}

func (p *Port) serveConn(c net.Conn) {
	src := sourceOf(c)
	if !p.count(p.opening, src, MaxOpening) {
		p.log.Debug("refused raft port connection: too many opening from its address", "remote", c.RemoteAddr().String())
		return
	}
	opening := true
	done := func() {
		if opening {
			opening = false
			p.uncount(p.opening, src)
		}
	}
	defer done()
	sender := ""
	if p.tls != nil {
		tc, id, err := serve.TLSHandshake(c, p.tls.ServerConfig(), p.handshake)
		if err != nil {
			p.log.Warn("refused raft port connection", "remote", c.RemoteAddr().String(), "error", err)
			return
		}
		if id.Role != wire.RoleNode {
			p.log.Warn("refused raft port connection: not a node certificate", "remote", c.RemoteAddr().String(),
				"name", id.Name, "role", id.Role)
			return
		}
		c, sender = tc, id.Name
	}
	var head [5]byte
	c.SetReadDeadline(time.Now().Add(p.handshake)) //nolint:errcheck // a failed deadline fails the read
	if _, err := io.ReadFull(c, head[:1]); err != nil {
		return
	}
	if head[0] == StreamGroup {
		if _, err := io.ReadFull(c, head[1:]); err != nil {
			return
		}
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck // as above
	done()
	switch head[0] {
	case StreamRaft:
		p.raftStream(sender, 0, c) // serve.Conns closes c after this
	case StreamGroup:
		p.raftStream(sender, GroupID(binary.BigEndian.Uint32(head[1:])), c)
	case StreamPeer:
		if sender != "" && !p.count(p.peers, sender, MaxPeerStreams) {
			p.log.Warn("refused peer stream: too many open", "node", sender, "max", MaxPeerStreams)
			return
		}
		if sender != "" {
			defer p.uncount(p.peers, sender)
		}
		p.peerStream(sender, c)
	default:
		p.log.Warn("refused raft port connection: unknown stream kind", "remote", c.RemoteAddr().String(), "byte", head[0])
	}
}

// count counts one more of key in m, if it has fewer than max.
func (p *Port) count(m map[string]int, key string, max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m[key] >= max {
		return false
	}
	m[key]++
	return true
}

func (p *Port) uncount(m map[string]int, key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m[key]--; m[key] <= 0 {
		delete(m, key)
	}
}

// sourceOf is a connection's remote IP address.
func sourceOf(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// Addr is the port's listening address.
func (p *Port) Addr() string { return p.conns.Addr() }

// Close stops the port and closes every stream.
func (p *Port) Close() error {
	p.conns.Close()
	return nil
}

// Dialer is the raft.StreamLayer of the outbound transport: it dials
// peers' Raft ports and accepts nothing (inbound streams come through
// the port to the inboxes).
type Dialer struct {
	tls     *pki.Source
	adv     net.Addr
	group   GroupID
	closing chan struct{}
	once    sync.Once
	// memberAt names the member at an address (NewTransport sets it from
	// its rules' configuration), whose certificate must answer there.
	memberAt func(raft.ServerAddress) string
}

// NewDialer dials the Raft streams of group.
func NewDialer(src *pki.Source, adv net.Addr, group GroupID) *Dialer {
	return &Dialer{tls: src, adv: adv, group: group, closing: make(chan struct{})}
}

// Accept blocks until Close.
func (d *Dialer) Accept() (net.Conn, error) {
	<-d.closing
	return nil, net.ErrClosed
}

// Close ends Accept.
func (d *Dialer) Close() error {
	d.once.Do(func() { close(d.closing) })
	return nil
}

// Addr is the advertised address, which Raft gives its peers.
func (d *Dialer) Addr() net.Addr { return d.adv }

// Dial is raft.StreamLayer's: a Raft stream to a peer.
func (d *Dialer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	member := ""
	if d.memberAt != nil {
		member = d.memberAt(address)
	}
	return Dial(ctx, d.tls, member, string(address), streamHeader(d.group))
}

// Dial opens a stream to member's Raft port at addr and writes its header
// (the stream's kind, and a group's id); with TLS, the server must present
// a node certificate naming member ("": any node's).
func Dial(ctx context.Context, src *pki.Source, member, addr string, header []byte) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if src != nil {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		tc := tls.Client(c, src.MemberClientConfig(host, member))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl) //nolint:errcheck // a failed deadline fails the write
	}
	if _, err := c.Write(header); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{}) //nolint:errcheck // as above
	return c, nil
}
