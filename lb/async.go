package lb

import (
	"context"

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
	fwd := asRole(from.Role, o)
	b.inflight.Add(1)
	err := conn.Go(fwd, b.retryPolicy().AttemptTimeout(), func(m wire.Message, err error) {
		li, err := b.ordered(m, err)
		if err == nil {
			b.inflight.Add(-1)
			answer(li)
			return
		}
		// This runs on the leader connection's reader: the retry loop,
		// which waits, gets a goroutine. The client connection's request
		// accounting owns it: answer is called before that connection
		// finishes closing.
		go func() {
			defer b.inflight.Add(-1)
			f := &forwarded{b: b, write: true, req: fwd, be: be, conn: conn}
			answer(wire.Reply(b.ordered(retry.Resume(ctx, b.retryPolicy(), f, err))))
		}()
	})
	if err != nil {
		b.inflight.Add(-1)
		return false
	}
	b.requests.Add(1)
	return true
}
