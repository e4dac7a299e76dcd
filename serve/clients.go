package serve

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"orderly/wire"
)

// clients is what a server keeps of each client certificate name across
// all of its connections: how many are open (Bounds.MaxConnsPerClient),
// and its token bucket (Bounds.RateLimit). A request over the rate is
// answered Overloaded at once: nothing is queued for it. Nodes and
// balancers are bounded by neither: they are the cluster's own, and a
// balancer limits its clients itself (counting them on the node would
// make every client behind it share one bucket). A plaintext connection
// (no name) is its own client.
type clients struct {
	maxConns    int     // per client; 0: no bound
	maxInFlight int     // per client; 0: no bound
	maxReplies  int64   // reply bytes per client; 0: no bound
	maxWatchers int     // per client; 0: no bound
	perSec      float64 // 0: no rate limit
	burst       int

	mu     sync.Mutex
	byName map[string]*client
	// refused counts connections refused at maxConns; lastWarn bounds
	// the log to a line per 10 s.
	refused  uint64
	lastWarn time.Time
}

// client is one certificate name's share.
type client struct {
	lim   *rate.Limiter // nil: no rate limit
	conns int
	// slots bound the requests in progress across the client's
	// connections, replies the bytes of their replies not yet written
	// (nil: not bounded per client).
	slots   chan struct{}
	replies *replyBudget
	// watchers are the client's open Watch streams, of at most
	// maxWatchers (0: not bounded per client).
	watchers    atomic.Int32
	maxWatchers int32
}

func newClients(b Bounds) *clients {
	return &clients{maxConns: b.MaxConnsPerClient, maxInFlight: b.MaxInFlightPerClient, maxReplies: b.MaxReplyBytesPerClient,
		maxWatchers: b.MaxWatchersPerClient,
		perSec:      b.RateLimit, burst: max(1, int(b.RateLimit/10)), byName: map[string]*client{}}
}

func (cs *clients) newClient(who Caller) *client {
	c := &client{}
	if cs.perSec > 0 {
		c.lim = rate.NewLimiter(rate.Limit(cs.perSec), cs.burst)
	}
	if !exempt(who) {
		if cs.maxInFlight > 0 {
			c.slots = make(chan struct{}, cs.maxInFlight)
		}
		if cs.maxReplies > 0 {
			c.replies = newReplyBudget(cs.maxReplies, nil)
		}
		c.maxWatchers = int32(cs.maxWatchers)
	}
	return c
}

// take waits for one of the client's request slots, until ctx ends.
func (c *client) take(ctx context.Context) error {
	if c.slots == nil {
		return nil
	}
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch counts a Watch stream of the client; false past its bound.
// unwatch gives it back.
func (c *client) watch() bool {
	if c.watchers.Add(1) > c.maxWatchers && c.maxWatchers > 0 {
		c.watchers.Add(-1)
		return false
	}
	return true
}

func (c *client) unwatch() { c.watchers.Add(-1) }

// done gives a slot back.
func (c *client) done() {
	if c.slots != nil {
		<-c.slots
	}
}

// exempt: a balancer (it carries many clients, each bounded at the
// balancer), and plaintext connections. A node certificate is not: nodes
// call each other on the Raft port's peer streams (raftnode/peers.go),
// whose server sets no per-client bound, and on a client port it is one
// client like any other.
func exempt(who Caller) bool {
	return who.Name == "" || who.Role == wire.RoleBalancer
}

// attach counts a connection of who and returns its client; past
// MaxConnsPerClient it refuses. detach gives it back when the connection
// closes, so the map holds only connected clients.
func (cs *clients) attach(who Caller) (*client, error) {
	if who.Name == "" {
		return cs.newClient(who), nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.byName[who.Name]
	if c == nil {
		c = cs.newClient(who)
		cs.byName[who.Name] = c
	}
	if cs.maxConns > 0 && c.conns >= cs.maxConns && !exempt(who) {
		cs.refused++
		err := fmt.Errorf("client %q has %d connections open, the most one client may (--max-conns-per-client); %d refused so far",
			who.Name, c.conns, cs.refused)
		if time.Since(cs.lastWarn) < 10*time.Second {
			err = errQuiet{err}
		} else {
			cs.lastWarn = time.Now()
		}
		return nil, err
	}
	c.conns++
	return c, nil
}

func (cs *clients) detach(who Caller, c *client) {
	if who.Name == "" {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c.conns--; c.conns == 0 {
		delete(cs.byName, who.Name)
	}
}

// errQuiet is a refusal not worth another log line so soon.
type errQuiet struct{ error }

// refusedConns is how many connections were refused per client.
func (cs *clients) refusedConns() uint64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.refused
}

// allow takes a token for a request from a caller of role.
func (c *client) allow(role wire.Role) bool {
	return c.lim == nil || role == wire.RoleBalancer || c.lim.Allow()
}
