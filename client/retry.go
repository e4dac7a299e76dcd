package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderly/wire"
)

// ErrUnknownOutcome wraps the last error of a write that may or may not
// have been applied when the client gave up.
var ErrUnknownOutcome = errors.New("outcome unknown")

// doAs is do with the answer's type checked.
func doAs[T wire.Message](ctx context.Context, c *Client, toLeader bool, req wire.Message) (T, error) {
	m, err := c.do(ctx, toLeader, req)
	return wire.As[T](req, m, err)
}

// do sends req to the cluster until it succeeds, fails for sure, or the
// retry deadline passes. toLeader calls start at the last known leader.
// The deadline is kept as a time, not a derived context: contexts cost a
// lock on the parent per call, and a load generator makes many calls.
func (c *Client) do(ctx context.Context, toLeader bool, req wire.Message) (wire.Message, error) {
	deadline := time.Now().Add(c.opt.RetryTimeout)
	backoff := 5 * time.Millisecond
	unknown := false
	redirects := 0 // NotLeader answers in a row
	var last error
	// over reports why the call must stop: the caller's ctx ended or the
	// retry budget is spent.
	over := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return context.DeadlineExceeded
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.Stats.Retries.Add(1)
			select {
			case <-time.After(min(backoff, time.Until(deadline))):
			case <-ctx.Done():
			}
			if err := over(); err != nil {
				return nil, c.giveUp(last, unknown, err)
			}
			backoff = min(max(backoff*2, 5*time.Millisecond), 200*time.Millisecond)
		}
		addr := c.pick(toLeader)
		conn, err := c.conn(ctx, addr)
		if err != nil {
			last = err
			c.rotate(addr)
			continue
		}
		// Bound each attempt, so a paused or cut-off node costs a few
		// seconds and not the whole budget.
		resp, err := conn.CallTimeout(ctx, req, max(min(c.attemptTimeout(), time.Until(deadline)), time.Millisecond))
		if err == nil {
			if toLeader {
				c.setLeader(addr)
			}
			return resp, nil
		}
		last = err
		code, isWire := wire.CodeOf(err)
		if code != wire.CodeNotLeader {
			redirects = 0
		}
		switch {
		case !isWire && over() != nil:
			// The caller gave up (or the retry budget ran out): the
			// request may have been applied, but the connection is fine
			// and other calls share it.
			unknown = true
		case !isWire:
			// Connection lost or no answer in time: the request may have
			// been applied. Drop the connection and try elsewhere.
			unknown = true
			c.drop(addr, conn)
			c.rotate(addr)
		case code == wire.CodeNotLeader:
			c.Stats.Redirects.Add(1)
			redirects++
			var we *wire.Error
			errors.As(err, &we)
			if we.LeaderAddr != "" && we.LeaderAddr != addr {
				c.setLeader(we.LeaderAddr)
				if redirects == 1 {
					// A known leader: go there at once. If it sends us on
					// again, nodes disagree (an election is under way), and
					// the backoff keeps us from bouncing between them.
					backoff = 0
				}
			} else {
				c.rotate(addr)
			}
		case code.Unknown():
			unknown = true
		case code == wire.CodeUnavailable || code == wire.CodeOverloaded:
			c.rotate(addr)
		default: // BadRequest, StaleSeq: retrying cannot help
			return nil, err
		}
		if err := over(); err != nil {
			return nil, c.giveUp(last, unknown, err)
		}
	}
}

func (c *Client) attemptTimeout() time.Duration {
	return max(c.opt.RetryTimeout/3, time.Second)
}

func (c *Client) giveUp(last error, unknown bool, ctxErr error) error {
	if last == nil {
		last = ctxErr
	}
	if unknown {
		return fmt.Errorf("%w: gave up after %v: %v", ErrUnknownOutcome, c.opt.RetryTimeout, last)
	}
	return fmt.Errorf("gave up after %v: %w", c.opt.RetryTimeout, last)
}

func (c *Client) pick(toLeader bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if toLeader && c.leader != "" {
		return c.leader
	}
	return c.opt.Addrs[c.next%len(c.opt.Addrs)]
}

func (c *Client) setLeader(addr string) {
	c.mu.Lock()
	c.leader = addr
	c.mu.Unlock()
}

// rotate moves past a failing address.
func (c *Client) rotate(failed string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == failed {
		c.leader = ""
	}
	if c.opt.Addrs[c.next%len(c.opt.Addrs)] == failed {
		c.next++
	}
}

func (c *Client) conn(ctx context.Context, addr string) (*wire.Conn, error) {
	c.mu.Lock()
	if conn := c.conns[addr]; conn != nil && conn.Err() == nil {
		c.mu.Unlock()
		return conn, nil
	}
	c.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := wire.Dial(dctx, addr, wire.DialOptions{Timeout: time.Second, MaxFrame: c.opt.MaxFrame})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.conns[addr]; old != nil {
		if old.Err() == nil {
			// Another call dialed at the same moment and won: share its
			// connection. Closing it would fail the calls already on it.
			conn.Close()
			return old, nil
		}
		old.Close()
	}
	c.conns[addr] = conn
	return conn, nil
}

func (c *Client) drop(addr string, conn *wire.Conn) {
	c.mu.Lock()
	if c.conns[addr] == conn {
		delete(c.conns, addr)
	}
	c.mu.Unlock()
	conn.Close()
}
