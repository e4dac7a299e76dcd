package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orderly/retry"
	"orderly/wire"
)

// ErrUnreachable means no address answered with the orderly handshake
// within Options.DialTimeout: a wrong address, a port of another service,
// or a cluster that is down.
var ErrUnreachable = errors.New("unreachable")

// ErrUnknownOutcome wraps the last error of a write that may or may not
// have been applied when the client gave up. It wraps the last attempt's
// error too, but that error's code (NotLeader, say) is that attempt's
// fate, not the write's: check for ErrUnknownOutcome first.
var ErrUnknownOutcome = errors.New("outcome unknown")

// route says where a request goes first: to the last known leader of a
// shard, or to any node.
type route struct {
	leader bool
	shard  uint32
}

// metaRoute keys the meta group's leader among the shards' (membership,
// alarms, backups go there; in a cluster of one shard it also leads
// shard 0, and is learned twice).
const metaRoute = ^uint32(0)

var (
	anyNode    = route{}
	metaLeader = route{leader: true, shard: metaRoute}
)

// toLeaderOf routes to the leader of shard sh.
func (c *Client) toLeaderOf(sh uint32) route { return route{leader: true, shard: sh} }

// doAs is do with the answer's type checked.
func doAs[T wire.Message](ctx context.Context, c *Client, to route, req wire.Message) (T, error) {
	m, err := c.do(ctx, to, req)
	return wire.As[T](req, m, err)
}

// do sends req to the cluster until it succeeds, fails for sure, or the
// retry deadline passes (package retry).
func (c *Client) do(ctx context.Context, to route, req wire.Message) (wire.Message, error) {
	return retry.Do(ctx, retry.Policy{Timeout: c.opt.RetryTimeout, MaxBackoff: 200 * time.Millisecond,
		Retries: &c.Stats.Retries, Redirects: &c.Stats.Redirects},
		&call{c: c, to: to, req: req, start: time.Now()})
}

// call is one request's side of the retry loop: it picks an address per
// attempt and rotates past the ones that fail.
type call struct {
	c       *Client
	to      route
	req     wire.Message
	addr    string     // of the last attempt
	next    string     // where a WrongShard answer sent a read's next attempt
	conn    *wire.Conn // of the last attempt, nil if the dial failed
	start   time.Time
	reached bool // some attempt got through to a node that speaks orderly
}

func (a *call) Try(ctx context.Context, timeout time.Duration) (wire.Message, error) {
	a.addr = a.c.pick(a.to)
	if a.next != "" {
		a.addr, a.next = a.next, ""
	}
	conn, err := a.c.conn(ctx, a.addr)
	a.conn = conn
	if err != nil {
		return nil, fmt.Errorf("%w: %w", retry.ErrNotSent, err)
	}
	a.reached = true
	resp, err := conn.CallTimeout(ctx, a.req, timeout)
	if err == nil && a.to.leader {
		a.c.setLeader(a.to.shard, a.addr)
	}
	return resp, err
}

func (a *call) Failed(f retry.Failure, err error) (bool, error) {
	switch f {
	case retry.NotSent:
		a.c.rotate(a.addr)
		// Nothing answers at all: a wrong address, a port that does not
		// speak orderly, a cluster that is down. Waiting the whole retry
		// budget cannot help; during a failover some address answers.
		if !a.reached && time.Since(a.start) >= a.c.opt.DialTimeout {
			return false, fmt.Errorf("%w: no orderly node answered at %s within %v: %v",
				ErrUnreachable, strings.Join(a.c.opt.Addrs, ","), a.c.opt.DialTimeout, err)
		}
	case retry.Busy:
		a.c.rotate(a.addr)
	case retry.Lost: // the connection may be broken: drop it, try elsewhere
		a.c.drop(a.addr, a.conn)
		a.c.rotate(a.addr)
	case retry.NotLeader:
		var we *wire.Error
		if errors.As(err, &we) && we.LeaderAddr != "" && we.LeaderAddr != a.addr {
			if a.to.leader {
				a.c.setLeader(a.to.shard, we.LeaderAddr)
			} else { // a read: to a node that holds the shard
				a.next = we.LeaderAddr
			}
			return true, nil
		}
		a.c.rotate(a.addr)
	}
	return false, nil
}

func (a *call) GiveUp(last error, unknown bool, why error) error {
	if last == nil {
		last = why
	}
	if _, refusal := wire.CodeOf(why); refusal {
		// A sure refusal of a resend: an earlier attempt was lost.
		return fmt.Errorf("%w: an earlier attempt may have been applied; the last was refused: %w", ErrUnknownOutcome, last)
	}
	if unknown {
		return fmt.Errorf("%w: gave up after %v: %w", ErrUnknownOutcome, a.c.opt.RetryTimeout, last)
	}
	return fmt.Errorf("gave up after %v: %w", a.c.opt.RetryTimeout, last)
}

func (c *Client) pick(to route) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.leaders[to.shard]; to.leader && l != "" {
		return l
	}
	return c.opt.Addrs[c.next%len(c.opt.Addrs)]
}

func (c *Client) setLeader(shard uint32, addr string) {
	c.mu.Lock()
	c.leaders[shard] = addr
	c.mu.Unlock()
}

// rotate moves past a failing address.
func (c *Client) rotate(failed string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sh, l := range c.leaders {
		if l == failed {
			delete(c.leaders, sh)
		}
	}
	if c.opt.Addrs[c.next%len(c.opt.Addrs)] == failed {
		c.next++
	}
}

// dial is one connection attempt that concurrent calls share.
type dial struct {
	done chan struct{}
	conn *wire.Conn
	err  error
}

// conn is the connection to addr, dialled if there is none (once for all
// the calls that need it at that moment: 256 customers starting at once
// on 16 clients made 256 TLS handshakes, not 16).
func (c *Client) conn(ctx context.Context, addr string) (*wire.Conn, error) {
	c.mu.Lock()
	if conn := c.conns[addr]; conn != nil && conn.Err() == nil {
		c.mu.Unlock()
		return conn, nil
	}
	if d := c.dials[addr]; d != nil {
		c.mu.Unlock()
		select {
		case <-d.done:
			return d.conn, d.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	d := &dial{done: make(chan struct{})}
	c.dials[addr] = d
	c.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	d.conn, d.err = wire.Dial(dctx, addr, wire.DialOptions{Timeout: time.Second, MaxFrame: c.opt.MaxFrame, TLS: c.opt.TLS})
	c.mu.Lock()
	delete(c.dials, addr)
	if d.err == nil && c.closed {
		d.conn.Close()
		d.conn, d.err = nil, errors.New("client: closed")
	}
	if d.err == nil {
		if old := c.conns[addr]; old != nil {
			old.Close() // broken, or we would not have dialled
		}
		c.conns[addr] = d.conn
	}
	c.mu.Unlock()
	close(d.done)
	return d.conn, d.err
}

func (c *Client) drop(addr string, conn *wire.Conn) {
	c.mu.Lock()
	if c.conns[addr] == conn {
		delete(c.conns, addr)
	}
	c.mu.Unlock()
	conn.Close()
}
