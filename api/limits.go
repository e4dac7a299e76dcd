package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"orderly/wire"
)

// Limits bound what the API takes, over all clients and per client (a
// certificate name; an address without TLS). A call past a bound is
// answered 429 at once: nothing waits for a slot.
type Limits struct {
	// MaxInFlight bounds calls in progress (watches not counted); 0:
	// DefaultMaxInFlight.
	MaxInFlight int
	// MaxInFlightPerClient bounds one client's calls in progress; 0:
	// DefaultMaxInFlightPerClient.
	MaxInFlightPerClient int
	// RatePerClient is the calls per second a client may start (burst: a
	// tenth of a second's, at least 1); 0: no rate limit.
	RatePerClient float64
	// MaxWatchers bounds the open watch streams; 0: DefaultMaxWatchers.
	MaxWatchers int
	// MaxWatchersPerClient bounds one client's; 0:
	// DefaultMaxWatchersPerClient.
	MaxWatchersPerClient int
	// WatchWriteTimeout cuts off a watcher that has not taken an event
	// for so long; 0: DefaultWatchWriteTimeout.
	WatchWriteTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxInFlight          = 4096
	DefaultMaxInFlightPerClient = 1024
	DefaultMaxWatchers          = 256
	DefaultMaxWatchersPerClient = 16
	DefaultWatchWriteTimeout    = 10 * time.Second
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxInFlight, DefaultMaxInFlight)
	def(&l.MaxInFlightPerClient, DefaultMaxInFlightPerClient)
	def(&l.MaxWatchers, DefaultMaxWatchers)
	def(&l.MaxWatchersPerClient, DefaultMaxWatchersPerClient)
	if l.WatchWriteTimeout <= 0 {
		l.WatchWriteTimeout = DefaultWatchWriteTimeout
	}
	return l
}

// clients counts what each client holds. A client's entry lives while it
// holds something or its token bucket is not full again, so the map
// holds only recent clients.
type clients struct {
	lim      Limits
	mu       sync.Mutex
	inflight int
	watchers int
	byName   map[string]*clientShare
}

type clientShare struct {
	inflight, watchers int
	bucket             *rate.Limiter // nil: no rate limit
}

func newClients(l Limits) *clients {
	return &clients{lim: l, byName: map[string]*clientShare{}}
}

func (cs *clients) share(name string) *clientShare {
	c := cs.byName[name]
	if c == nil {
		c = &clientShare{}
		if cs.lim.RatePerClient > 0 {
			c.bucket = rate.NewLimiter(rate.Limit(cs.lim.RatePerClient), max(1, int(cs.lim.RatePerClient/10)))
		}
		cs.byName[name] = c
	}
	return c
}

// forget drops c's entry once it holds nothing.
func (cs *clients) forget(name string, c *clientShare) {
	if c.inflight == 0 && c.watchers == 0 && (c.bucket == nil || c.bucket.Tokens() >= float64(c.bucket.Burst())) {
		delete(cs.byName, name)
	}
}

// slotKind is what a slot is for: a call in progress or an open watch.
type slotKind int

const (
	callSlot slotKind = iota
	watchSlot
)

// take takes a slot of kind k for client name: within its rate, and
// under the bounds of all clients and of this one.
func (cs *clients) take(name string, k slotKind) (release func(), err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.share(name)
	all, mine, maxAll, maxMine, what := &cs.inflight, &c.inflight, cs.lim.MaxInFlight, cs.lim.MaxInFlightPerClient, "calls in progress"
	if k == watchSlot {
		all, mine, maxAll, maxMine, what = &cs.watchers, &c.watchers, cs.lim.MaxWatchers, cs.lim.MaxWatchersPerClient, "watchers open"
	}
	switch {
	case c.bucket != nil && !c.bucket.Allow():
		cs.forget(name, c)
		return nil, wire.Errorf(wire.CodeOverloaded, "client %q is over its rate of %g calls per second", name, cs.lim.RatePerClient)
	case *all >= maxAll:
		cs.forget(name, c)
		return nil, wire.Errorf(wire.CodeOverloaded, "the API has %d %s", *all, what)
	case *mine >= maxMine:
		return nil, wire.Errorf(wire.CodeOverloaded, "client %q has %d %s", name, *mine, what)
	}
	*all++
	*mine++
	return func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		*all--
		*mine--
		cs.forget(name, c)
	}, nil
}
