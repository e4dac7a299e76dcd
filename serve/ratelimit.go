package serve

import (
	"sync"

	"golang.org/x/time/rate"

	"orderly/wire"
)

// rateLimits holds one token bucket per client certificate name, shared
// by all of that client's connections (a plaintext connection gets its
// own). A request over the rate is answered Overloaded at once: nothing
// is queued for it. Requests a balancer forwards are not counted here: the
// balancer limits its own clients, and counting them on the node would
// make every client behind it share one bucket.
type rateLimits struct {
	perSec float64
	burst  int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	refs int // open connections of this client
}

func newRateLimits(perSec float64) *rateLimits {
	if perSec <= 0 {
		return nil
	}
	return &rateLimits{perSec: perSec, burst: max(1, int(perSec/10)), buckets: map[string]*bucket{}}
}

// attach returns the bucket of a connection of client name ("" for a
// plaintext one, which gets its own); detach gives it back when the
// connection closes, so the map holds only connected clients.
func (r *rateLimits) attach(name string) *bucket {
	if r == nil {
		return nil
	}
	if name == "" {
		return &bucket{lim: rate.NewLimiter(rate.Limit(r.perSec), r.burst)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[name]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(r.perSec), r.burst)}
		r.buckets[name] = b
	}
	b.refs++
	return b
}

func (r *rateLimits) detach(name string, b *bucket) {
	if r == nil || name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.refs--; b.refs == 0 {
		delete(r.buckets, name)
	}
}

// allow takes a token for a request from a caller of role.
func (b *bucket) allow(role wire.Role) bool {
	return b == nil || role == wire.RoleBalancer || role == wire.RoleNode || b.lim.Allow()
}
