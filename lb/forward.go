package lb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderly/retry"
	"orderly/serve"
	"orderly/wire"
)

// forward sends req to the leader (write) or a follower (read) and tries
// other nodes until an answer is final or RetryTimeout passes (package
// retry). A write is resent unchanged, with the client's (client_id, seq),
// so however many times it reaches the log it is applied once.
// The node serves it with the client's role (wire.AsRole), never with the
// balancer's own; a plaintext client's request (--insecure, role none)
// goes as it is.
func (b *Balancer) forward(ctx context.Context, from client, write bool, req wire.Message) (wire.Message, error) {
	sh := metaShard
	if bk, ok := req.(wire.Backup); ok && bk.PerShard { // a shard's backup: from its leader
		sh = bk.Shard
	}
	return retry.Do(ctx, b.retryPolicy(), &forwarded{b: b, write: write, shard: sh, req: asRole(from.role, req), lane: from.lane})
}

// client is who a request comes from: the role the node serves it with,
// and its lane in the share of the leader connection (share.go).
type client struct {
	role wire.Role
	lane laneID
}

// orderlyClient is a client of the orderly port: its certificate's name
// (empty on a plaintext port), a lane per connection.
func orderlyClient(from serve.Caller) client {
	return client{role: from.Role, lane: laneID{client: from.Name, conn: uint64(uint32(from.ConnID))}}
}

// asRole wraps req so that the node serves it with the client's role.
func asRole(role wire.Role, req wire.Message) wire.Message {
	if role == wire.RoleNone {
		return req
	}
	return wire.AsRole{Role: role, Msg: req}
}

func (b *Balancer) retryPolicy() retry.Policy {
	return retry.Policy{Timeout: b.cfg.RetryTimeout, MaxBackoff: 100 * time.Millisecond,
		Retries: &b.retries, Redirects: &b.redirects}
}

// forwarded is one request's side of the retry loop: it picks a backend
// per attempt; a backend that loses the request is left to the prober.
type forwarded struct {
	b     *Balancer
	write bool
	// order: an order, which the leader of its customer's shard takes
	// (the shard is settled per attempt: the pool may learn the shard
	// count meanwhile); any other write (an admin call) goes to the meta
	// group's leader, shard metaShard.
	order    bool
	customer int32
	shard    uint32
	req      wire.Message
	lane     laneID     // the client's, for writes (share.go)
	be       *backend   // of the last attempt
	conn     *wire.Conn // of the last attempt
	// next, of a read: the node a WrongShard answer named, for the next
	// attempt (one that holds a replica of the customer's shard).
	next *backend
}

func (f *forwarded) Try(ctx context.Context, timeout time.Duration) (wire.Message, error) {
	if f.order {
		f.shard = f.b.pool.shardOf(f.customer)
	}
	f.be, f.conn = f.b.pick(f.write, f.shard), nil
	if f.next != nil {
		f.be, f.next = f.next, nil
	}
	if f.be == nil {
		if f.write {
			return nil, fmt.Errorf("%w: no leader known", retry.ErrNotSent)
		}
		return nil, fmt.Errorf("%w: no healthy node to take it", retry.ErrNotSent)
	}
	if f.conn = f.be.usable(); f.conn == nil {
		return nil, fmt.Errorf("%w: no connection to %s", retry.ErrNotSent, f.be.addr)
	}
	if !f.write {
		return f.conn.CallTimeout(ctx, f.req, timeout)
	}
	// A write waits for its turn in the leader connection's window
	// (share.go) within the attempt's time, and holds its slot until the
	// node is through with it, which may be after the attempt gave up.
	start := time.Now()
	if !f.be.share.wait(ctx, f.lane, timeout) {
		return nil, fmt.Errorf("%w: no turn on the connection to %s in %v", retry.ErrNotSent, f.be.addr, timeout)
	}
	return f.conn.CallSettled(ctx, f.req, max(timeout-time.Since(start), time.Millisecond), f.be.share.release)
}

func (f *forwarded) Failed(fl retry.Failure, err error) (bool, error) {
	switch fl {
	case retry.Lost:
		// The node may be dead or paused. The prober decides; we move on.
		if f.conn.Err() != nil {
			f.be.fail(f.conn, err)
		} else {
			f.be.poke()
		}
	case retry.NotLeader:
		var we *wire.Error
		errors.As(err, &we)
		if !f.write {
			f.next = f.b.pool.backendAt(we.LeaderAddr)
			return f.next != nil, nil
		}
		f.b.pool.hintShard(f.be, f.shard, we.LeaderAddr)
		return f.b.pool.writerOf(f.shard) != nil, nil
	}
	return false, nil
}

// GiveUp turns the last error into the answer for the client: Timeout
// (outcome unknown, retry with the same seq) if a write may have been
// applied, however the last attempt was refused; else the refusal, or
// Unavailable when the budget ran out. A client that went away gets
// nothing: there is no one to answer, and nothing says the node is unwell.
func (f *forwarded) GiveUp(last error, unknown bool, why error) error {
	_, refusal := wire.CodeOf(why)
	if !refusal && !errors.Is(why, retry.ErrBudgetSpent) {
		return why
	}
	b := f.b
	if f.write && unknown {
		b.failures.Add(1)
		return wire.Errorf(wire.CodeTimeout, "balancer: outcome unknown: an attempt may have been applied; the last: %v", last)
	}
	if refusal {
		return why
	}
	b.failures.Add(1)
	var we *wire.Error
	if errors.As(last, &we) && we.Code != wire.CodeNotLeader {
		return we
	}
	return wire.Errorf(wire.CodeUnavailable, "balancer: no node answered within %v: %v", b.cfg.RetryTimeout, last)
}

// pick chooses the node for one attempt.
func (b *Balancer) pick(write bool, shard uint32) *backend {
	if write {
		if be := b.pool.writerOf(shard); be != nil {
			return be
		}
		b.pool.pokeAll()
		return nil
	}
	return b.pool.reader()
}
