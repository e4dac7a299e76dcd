package lb

import (
	"context"
	"sync"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// backend is one node as the balancer sees it. Only its prober dials;
// requests use the connection the prober keeps, so a dead or paused node
// costs a request nothing but a skip.
type backend struct {
	addr string

	mu      sync.Mutex
	conn    *wire.Conn
	healthy bool
	status  wire.StatusInfo // last successful probe
	lastErr error

	kick chan struct{} // asks the prober to probe now

	// share is the window of the connection that orders may take, shared
	// by the client connections (share.go); sized from the node's status.
	share *share
}

func newBackend(addr string) *backend {
	return &backend{addr: addr, kick: make(chan struct{}, 1),
		share: newShare(windowShare(serve.DefaultBounds().MaxInFlight))}
}

// usable returns the backend's connection if it is healthy.
func (b *backend) usable() *wire.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.healthy || b.conn == nil || b.conn.Err() != nil {
		return nil
	}
	return b.conn
}

// role is the node's Raft role, "down" if its last probe failed, or
// "empty" for a node without Raft state: one started on an empty data dir
// that waits to be added has nothing to read.
func (b *backend) role() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.healthy:
		return "down"
	case b.status.Term == 0:
		return "empty"
	}
	return b.status.Role
}

// fail takes the backend out of rotation after a request on conn failed
// in transport, and asks the prober to look at it at once.
func (b *backend) fail(conn *wire.Conn, err error) {
	b.mu.Lock()
	if b.conn == conn {
		b.healthy = false
		b.lastErr = err
		b.conn = nil
		conn.Close()
	}
	b.mu.Unlock()
	b.poke()
}

func (b *backend) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// probe dials if needed and asks for Status. It returns the status and
// whether the node answered.
func (b *backend) probe(ctx context.Context, timeout time.Duration, dial wire.DialOptions) (wire.StatusInfo, bool) {
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	if conn == nil || conn.Err() != nil {
		dial.Timeout = timeout
		conn, err = wire.Dial(ctx, b.addr, dial)
		if err != nil {
			b.down(nil, err)
			return wire.StatusInfo{}, false
		}
	}
	st, err := conn.Status(ctx)
	if err != nil {
		b.down(conn, err)
		return wire.StatusInfo{}, false
	}
	b.mu.Lock()
	if b.conn != nil && b.conn != conn {
		b.conn.Close()
	}
	b.conn, b.healthy, b.status, b.lastErr = conn, true, st, nil
	b.mu.Unlock()
	for _, s := range st.Stats {
		if s.Name == serve.StatMaxInFlight && s.Value > 0 {
			b.share.resize(windowShare(int(min(s.Value, 1<<20))))
		}
	}
	return st, true
}

func (b *backend) down(conn *wire.Conn, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.healthy, b.lastErr = false, err
	if conn != nil {
		conn.Close()
	}
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
	b.healthy = false
}
