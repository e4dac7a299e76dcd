package serve

import (
	"fmt"
	"time"

	"orderly/wire"
)

// Bounds are what one listener, one connection and one client may take
// of an orderly server. orderd and orderlb share them: the same flags
// (internal/daemon), the same checks, the same lines in status.
type Bounds struct {
	// MaxConns bounds the open connections; past it new ones get the busy
	// handshake answer (wire.ErrServerBusy) and the open ones go on.
	MaxConns int
	// MaxConnsPerClient bounds one client certificate's open connections
	// (balancers are not bounded): one client cannot lock every
	// other out of a port. Past it a new one gets the busy answer.
	MaxConnsPerClient int
	// IdleTimeout closes a connection that sends nothing (or takes no
	// reply) for this long; FrameTimeout one that has sent a frame's
	// length but not, within this long, its body; HandshakeTimeout one
	// that has not finished its TLS and orderly handshakes.
	IdleTimeout, FrameTimeout, HandshakeTimeout time.Duration
	// MaxInFlight bounds the requests in progress per connection,
	// MaxReplyBytes the bytes of its replies computed or queued and not
	// yet taken by the client; past either the server stops reading from
	// that connection.
	MaxInFlight   int
	MaxReplyBytes int64
	// MaxInFlightPerClient and MaxReplyBytesPerClient bound the same
	// across all the connections of one client certificate (nodes and
	// balancers are not bounded): a client that never reads, on 200
	// connections, holds what a few connections do, not 200 windows.
	MaxInFlightPerClient   int
	MaxReplyBytesPerClient int64
	// MaxWatchersPerClient bounds one client certificate's open Watch
	// streams (balancers are not bounded): one client cannot
	// take every watcher slot of a node (--max-watchers).
	MaxWatchersPerClient int
	// MaxFrameMemory bounds the bytes of big frames (over 64 KiB) being
	// read at once across all connections (wire.FrameBudget): a declared
	// length reserves nothing, arriving bytes take room, and past it
	// readers wait until room comes back or --frame-timeout passes.
	MaxFrameMemory int64
	// RateLimit, if above 0, bounds each client's requests per second (a
	// certificate name across all its connections); past it a request is
	// answered Overloaded. Balancers are not limited.
	RateLimit float64
}

// DefaultBounds are the daemons' defaults.
func DefaultBounds() Bounds {
	return Bounds{MaxConns: 10000, MaxConnsPerClient: 256, IdleTimeout: 10 * time.Minute, FrameTimeout: 10 * time.Second,
		HandshakeTimeout: 5 * time.Second, MaxInFlight: 1024, MaxReplyBytes: 1 << 20,
		MaxInFlightPerClient: 4096, MaxReplyBytesPerClient: 16 << 20, MaxWatchersPerClient: 64,
		MaxFrameMemory: 64 << 20}
}

// Check reports what is wrong with b, all at once.
func (b Bounds) Check() []error {
	var errs []error
	if b.MaxConns < 1 || b.MaxConnsPerClient < 1 {
		errs = append(errs, fmt.Errorf("max conns %d, max conns per client %d: need at least 1 each", b.MaxConns, b.MaxConnsPerClient))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"idle timeout", b.IdleTimeout}, {"frame timeout", b.FrameTimeout}, {"handshake timeout", b.HandshakeTimeout}} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", t.name, t.d))
		}
	}
	if b.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate limit %g: must not be negative", b.RateLimit))
	}
	if b.MaxInFlight < 1 || b.MaxReplyBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("max in flight %d, max reply bytes %d: need at least 1 and 65536", b.MaxInFlight, b.MaxReplyBytes))
	}
	if b.MaxFrameMemory < 16<<20 {
		errs = append(errs, fmt.Errorf("max frame memory %d: need at least 16 MiB", b.MaxFrameMemory))
	}
	if b.MaxWatchersPerClient < 1 {
		errs = append(errs, fmt.Errorf("max watchers per client %d: need at least 1", b.MaxWatchersPerClient))
	}
	if b.MaxInFlightPerClient < b.MaxInFlight || b.MaxReplyBytesPerClient < b.MaxReplyBytes {
		errs = append(errs, fmt.Errorf("max in flight per client %d, max reply bytes per client %d: need at least one connection's (%d, %d)",
			b.MaxInFlightPerClient, b.MaxReplyBytesPerClient, b.MaxInFlight, b.MaxReplyBytes))
	}
	return errs
}

// StatMaxInFlight names MaxInFlight in status: a balancer sizes its share
// of a node's connection window by it.
const StatMaxInFlight = "inflight_max_per_conn"

// Stats are the bounds as status lines.
func (b Bounds) Stats() []wire.Stat {
	return []wire.Stat{
		{Name: "conns_max", Value: uint64(b.MaxConns)},
		{Name: "conns_max_per_client", Value: uint64(b.MaxConnsPerClient)},
		{Name: StatMaxInFlight, Value: uint64(b.MaxInFlight)},
		{Name: "reply_bytes_max_per_conn", Value: uint64(b.MaxReplyBytes)},
		{Name: "inflight_max_per_client", Value: uint64(b.MaxInFlightPerClient)},
		{Name: "reply_bytes_max_per_client", Value: uint64(b.MaxReplyBytesPerClient)},
		{Name: "watchers_max_per_client", Value: uint64(b.MaxWatchersPerClient)},
		{Name: "frame_memory_max", Value: uint64(b.MaxFrameMemory)},
		{Name: "rate_limit_per_client", Value: uint64(b.RateLimit)},
		{Name: "handshake_timeout_ms", Value: uint64(b.HandshakeTimeout.Milliseconds())},
		{Name: "idle_timeout_ms", Value: uint64(b.IdleTimeout.Milliseconds())},
		{Name: "frame_timeout_ms", Value: uint64(b.FrameTimeout.Milliseconds())},
	}
}
