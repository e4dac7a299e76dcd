package lb

import (
	"context"
	"fmt"
	"time"

	"orderly/retry"
	"orderly/wire"
)

// An order takes one path through the balancer, whoever sends it (the
// orderly port, the HTTP API, the seed's port): order sends it on the
// leader's connection and returns, and the leader's answer goes back to
// the client from that connection's reader. No goroutine of the balancer
// waits for it: that saves a hand-off, a wait and a wake-up per order,
// most of what the balancer added to a write beyond its system calls
// (docs/performance.md). An order that finds the connection's window full
// waits for its turn in its client's lane (share.go) and is sent by the
// goroutine whose answer frees a slot. An attempt that fails goes on in
// the retry loop on a goroutine of its own, from where it stands
// (retry.Resume): the same (client_id, seq) is resent, so it is applied
// once however it ends. A write's in-flight count moves in order and in
// finish, nowhere else.
type write struct {
	b      *Balancer
	ctx    context.Context
	lane   laneID
	order  wire.Order
	req    wire.Message // the order, served with the client's role
	answer func(wire.Message)
	be     *backend   // of the last attempt
	conn   *wire.Conn // of the last attempt
	queued time.Time  // when it began to wait for its turn; zero if it did not
}

// order places o and calls answer once with the result; it never waits
// for the network.
func (b *Balancer) order(ctx context.Context, c client, o wire.Order, answer func(wire.Message)) {
	b.inflight.Add(1)
	w := &write{b: b, ctx: ctx, lane: c.lane, order: o, req: asRole(c.role, o), answer: answer}
	if err := o.Validate(); err != nil {
		w.finish(nil, wire.Errorf(wire.CodeBadRequest, "order: %v", err))
		return
	}
	if w.be = b.pool.writerOf(b.pool.shardOf(o.CustomerID)); w.be == nil {
		w.resume(nil) // the retry loop looks for a leader
		return
	}
	if w.conn = w.be.usable(); w.conn == nil {
		w.resume(nil)
		return
	}
	if w.be.share.tryTake() {
		if !w.send() {
			w.be.share.release()
		}
		return
	}
	w.queued = time.Now()
	w.be.share.enqueue(w.lane, w.send)
}

// placeOrder is order for a caller that waits for the answer.
func (b *Balancer) placeOrder(ctx context.Context, c client, o wire.Order) (wire.LaptopInfo, error) {
	answer := make(chan wire.Message, 1)
	b.order(ctx, c, o, func(m wire.Message) { answer <- m })
	select {
	case m := <-answer:
		if li, ok := m.(wire.LaptopInfo); ok {
			return li, nil
		}
		return wire.LaptopInfo{}, m.(*wire.Error)
	case <-ctx.Done(): // the order's fate is settled without its client
		return wire.LaptopInfo{}, wire.Errorf(wire.CodeTimeout, "balancer: the client went away before the order's answer")
	}
}

// send sends the order (it holds a slot of the connection's share) and
// reports whether the slot stays taken until the answer comes.
func (w *write) send() bool {
	b := w.b
	if !w.queued.IsZero() {
		if w.ctx.Err() != nil { // the client went away: no one to answer
			w.finish(nil, wire.Errorf(wire.CodeUnavailable, "balancer: client gone; order not sent"))
			return false
		}
		if waited := time.Since(w.queued); waited > b.cfg.RetryTimeout {
			b.turnsExpired.Add(1)
			w.finish(nil, wire.Errorf(wire.CodeOverloaded, "balancer: order waited %v for its turn on the leader connection; not sent", waited.Round(time.Millisecond)))
			return false
		}
	}
	if err := w.conn.Go(w.req, b.retryPolicy().AttemptTimeout(), w.answered, w.be.share.release); err != nil {
		w.resume(fmt.Errorf("%w: %v", retry.ErrNotSent, err))
		return false
	}
	return true
}

// answered takes the leader's answer or the attempt's failure, on the
// leader connection's reader.
func (w *write) answered(m wire.Message, err error) {
	li, err := w.b.ordered(m, err)
	if err != nil {
		w.resume(err)
		return
	}
	w.finish(li, nil)
}

// resume goes on in the retry loop after a failed attempt (first; nil if
// none was made). The loop waits, so it gets a goroutine of the
// balancer's; it ends with the retry budget or the client's context.
func (w *write) resume(first error) {
	w.b.routines.Go(func(context.Context) {
		f := &forwarded{b: w.b, write: true, order: true, customer: w.order.CustomerID, req: w.req, lane: w.lane, be: w.be, conn: w.conn}
		li, err := w.b.ordered(retry.Resume(w.ctx, w.b.retryPolicy(), f, first))
		w.finish(li, err)
	})
}

// finish answers the client: the one place an order leaves the balancer.
func (w *write) finish(m wire.Message, err error) {
	w.b.inflight.Add(-1)
	w.answer(wire.Reply(m, err))
}
