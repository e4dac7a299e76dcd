package observe

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Side port connection bounds: the port serves operators, Prometheus and
// the HTTP API, whose clients keep connections alive (an application
// server holds one per request in flight, as the binary port allows 256
// per client certificate); without bounds,
// 20,000 idle keep-alive connections without any certificate took every
// file descriptor of a node, and with them its client port and its
// leadership.
const (
	// DefaultMaxConns bounds the side port's open connections.
	DefaultMaxConns = 1024
	// DefaultMaxConnsPerSource bounds those of one source address.
	DefaultMaxConnsPerSource = 256
	// anonymousIdle closes a connection without a client certificate once
	// it has been idle this long (/livez and /readyz need none; a load
	// balancer's probe reconnects at no cost).
	anonymousIdle = 5 * time.Second
)

// connBounds enforces the bounds through http.Server.ConnState: a
// connection past a bound is closed as soon as it is accepted, and an
// idle one without a certificate after anonymousIdle. (The TLS handshake
// and the first request's header are bounded by ReadHeaderTimeout.)
type connBounds struct {
	max, perSource int
	refused        atomic.Uint64

	mu       sync.Mutex
	open     map[net.Conn]*boundedConn
	bySource map[string]int
}

type boundedConn struct {
	source string
	idle   *time.Timer // closes an idle connection without a certificate
}

func newConnBounds(max, perSource int) *connBounds {
	if max <= 0 {
		max = DefaultMaxConns
	}
	if perSource <= 0 {
		perSource = DefaultMaxConnsPerSource
	}
	return &connBounds{max: max, perSource: perSource, open: map[net.Conn]*boundedConn{}, bySource: map[string]int{}}
}

// state is http.Server.ConnState.
func (b *connBounds) state(c net.Conn, s http.ConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bc := b.open[c]
	switch s {
	case http.StateNew:
		src := sourceOf(c)
		if len(b.open) >= b.max || b.bySource[src] >= b.perSource {
			b.refused.Add(1)
			c.Close()
			return
		}
		b.open[c] = &boundedConn{source: src}
		b.bySource[src]++
	case http.StateActive:
		if bc != nil && bc.idle != nil {
			bc.idle.Stop()
			bc.idle = nil
		}
	case http.StateIdle:
		if bc != nil && !hasCertificate(c) {
			bc.idle = time.AfterFunc(anonymousIdle, func() { c.Close() })
		}
	case http.StateClosed, http.StateHijacked:
		if bc == nil {
			return // refused at StateNew
		}
		if bc.idle != nil {
			bc.idle.Stop()
		}
		delete(b.open, c)
		if b.bySource[bc.source]--; b.bySource[bc.source] == 0 {
			delete(b.bySource, bc.source)
		}
	}
}

// conns is the number of open connections.
func (b *connBounds) conns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.open)
}

func sourceOf(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// hasCertificate: the connection's client presented a verified
// certificate (a plaintext side port has none to present).
func hasCertificate(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return true // --insecure: nothing to tell apart
	}
	return len(tc.ConnectionState().VerifiedChains) > 0
}
