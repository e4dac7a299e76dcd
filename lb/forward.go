package lb

import (
	"context"
	"errors"
	"time"

	"orderly/wire"
)

// forward sends req to the leader (write) or a follower (read) and tries
// other nodes until an answer is final or RetryTimeout passes. A write is
// resent unchanged, with the client's (client_id, seq), so however many
// times it reaches the log it is applied once.
//
// The deadline is a time, not a derived context: a context per request
// costs a lock on the connection's context, shared by all its requests.
func (b *Balancer) forward(ctx context.Context, write bool, req wire.Message) (wire.Message, error) {
	deadline := time.Now().Add(b.cfg.RetryTimeout)
	unknown := false // a write attempt may have reached the log
	redirects := 0   // NotLeader answers in a row
	var last error
	backoff := time.Duration(0)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			b.retries.Add(1)
			select {
			case <-time.After(min(backoff, time.Until(deadline))):
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !time.Now().Before(deadline) {
				return nil, b.giveUp(write && unknown, last)
			}
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), 100*time.Millisecond)
		be := b.pick(write)
		if be == nil {
			last = errors.New("no healthy node to take it")
			if write {
				last = errors.New("no leader known")
			}
			continue
		}
		conn := be.usable()
		if conn == nil {
			continue
		}
		resp, err := conn.CallTimeout(ctx, req, max(min(b.attemptTimeout(), time.Until(deadline)), time.Millisecond))
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			// The client went away: there is no one to answer, and
			// nothing says the node is unwell, so no probe and no failure.
			return nil, ctx.Err()
		}
		last = err
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeNotLeader {
			redirects = 0
		}
		if !errors.As(err, &we) {
			// Lost connection or no answer in time: the node may be dead or
			// paused. The prober decides; we move on.
			unknown = true
			if conn.Err() != nil {
				be.fail(conn, err)
			} else {
				be.poke()
			}
			continue
		}
		switch {
		case we.Code == wire.CodeNotLeader:
			b.redirects.Add(1)
			redirects++
			b.pool.hint(be, we.LeaderAddr)
			if b.pool.currentLeader() != nil && redirects == 1 {
				backoff = 0 // go to the named leader at once, but not twice in a row
			}
		case we.Code.Unknown():
			unknown = true
		case we.Code == wire.CodeUnavailable || we.Code == wire.CodeOverloaded:
		default: // BadRequest, StaleSeq: final
			return nil, we
		}
	}
}

// pick chooses the node for one attempt.
func (b *Balancer) pick(write bool) *backend {
	if write {
		if be := b.pool.writer(); be != nil {
			return be
		}
		b.pool.pokeAll()
		return nil
	}
	return b.pool.reader()
}

func (b *Balancer) attemptTimeout() time.Duration {
	return max(b.cfg.RetryTimeout/3, time.Second)
}

// giveUp turns the last error into the answer for the client: Timeout
// (outcome unknown, retry with the same seq) if a write may have been
// applied, Unavailable otherwise.
func (b *Balancer) giveUp(unknown bool, last error) error {
	b.failures.Add(1)
	if unknown {
		return wire.Errorf(wire.CodeTimeout, "balancer: outcome unknown after %v: %v", b.cfg.RetryTimeout, last)
	}
	var we *wire.Error
	if errors.As(last, &we) && we.Code != wire.CodeNotLeader {
		return we
	}
	return wire.Errorf(wire.CodeUnavailable, "balancer: no node answered within %v: %v", b.cfg.RetryTimeout, last)
}
