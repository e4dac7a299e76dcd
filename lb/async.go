package lb

import (
	"context"
	"fmt"
	"time"

	"orderly/retry"
	"orderly/serve"
	"orderly/wire"
)

// start forwards an order to the leader with no goroutine of the
// balancer waiting for the answer (serve.Options.Async): the order goes
// to the leader's connection from the client connection's reader, and
// the leader's answer goes back to the client from the leader
// connection's reader. That saves a worker hand-off, a wait and a wake-up
// per order: most of what the balancer added to a write beyond its
// system calls (docs/performance.md). An order it cannot send so (no
// leader known, queue full, bad fields) is left to handle; an attempt that
// fails goes on in the retry loop on a goroutine of its own, from where
// it stands (retry.Resume): the same (client_id, seq) is resent, so it is
// applied once however it ends.
func (b *Balancer) start(ctx context.Context, from serve.Caller, req wire.Message, answer func(wire.Message)) bool {
	o, ok := req.(wire.Order)
	if !ok || o.Validate() != nil {
		return false
	}
	be := b.pool.writer()
	if be == nil {
		return false
	}
	conn := be.usable()
	if conn == nil {
		return false
	}
	c := orderlyClient(from)
	fwd := asRole(c.role, o)
	b.inflight.Add(1)
	b.requests.Add(1)
	// The order waits for a slot of the leader connection's window when
	// other clients fill it (share.go): it is sent from here if one is
	// free, else from the goroutine whose answer frees one. (The closure
	// only on the waiting path: it costs an allocation.)
	if be.share.tryTake() {
		if !b.send(ctx, c, be, conn, fwd, answer, time.Time{}) {
			be.share.release()
		}
		return true
	}
	queued := time.Now()
	be.share.enqueue(c.lane, func() bool { return b.send(ctx, c, be, conn, fwd, answer, queued) })
	return true
}

// send sends an order start took (queued at that time, if it waited for
// its turn) and reports whether it holds its slot in the share until the
// answer comes.
func (b *Balancer) send(ctx context.Context, c client, be *backend, conn *wire.Conn, fwd wire.Message, answer func(wire.Message), queued time.Time) bool {
	if !queued.IsZero() {
		if ctx.Err() != nil { // the client went away: no one to answer
			b.inflight.Add(-1)
			answer(wire.Errorf(wire.CodeUnavailable, "balancer: client gone; order not sent"))
			return false
		}
		if waited := time.Since(queued); waited > b.cfg.RetryTimeout {
			b.turnsExpired.Add(1)
			b.inflight.Add(-1)
			answer(wire.Errorf(wire.CodeOverloaded, "balancer: order waited %v for its turn on the leader connection; not sent", waited.Round(time.Millisecond)))
			return false
		}
	}
	err := conn.Go(fwd, b.retryPolicy().AttemptTimeout(), func(m wire.Message, err error) {
		b.answered(ctx, c.lane, be, conn, fwd, answer, m, err)
	}, be.share.release)
	if err != nil {
		b.answered(ctx, c.lane, be, conn, fwd, answer, nil, fmt.Errorf("%w: %v", retry.ErrNotSent, err))
		return false
	}
	return true
}

// answered ends an order start sent: with the leader's answer, or in the
// retry loop after a failed attempt.
func (b *Balancer) answered(ctx context.Context, lane laneID, be *backend, conn *wire.Conn, fwd wire.Message, answer func(wire.Message), m wire.Message, err error) {
	li, err := b.ordered(m, err)
	if err == nil {
		b.inflight.Add(-1)
		answer(li)
		return
	}
	// This may run on the leader connection's reader: the retry loop,
	// which waits, gets a goroutine. The client connection's request
	// accounting owns it: answer is called before that connection
	// finishes closing.
	go func() {
		defer b.inflight.Add(-1)
		f := &forwarded{b: b, write: true, req: fwd, lane: lane, be: be, conn: conn}
		answer(wire.Reply(b.ordered(retry.Resume(ctx, b.retryPolicy(), f, err))))
	}()
}
