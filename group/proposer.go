package group

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/internal/routines"
)

// proposer packs orders that wait at the same moment into one Raft entry
// (fsm.CmdPlaceOrders). Raft then stores, replicates and applies one entry
// for all of them: its per-entry costs (msgpack, BoltDB puts, the apply
// future) are paid once. Nothing waits to fill a batch: an order that finds
// the proposer idle goes alone, so one client sees no added latency, and
// batches grow only while Raft is busy with the previous ones: at most
// maxEntriesInFlight entries are proposed and not yet applied, and orders
// that arrive meanwhile wait to share the next one.
type proposer struct {
	raft     *raft.Raft
	await    func(raft.Future) error // the group's Await
	timeout  time.Duration
	in       chan *proposal
	slots    chan struct{}   // one per entry in flight
	routines *routines.Group // the group's: the loop and one waiter per entry in flight

	// entries and orders count what was proposed (metrics: orders per entry).
	entries, orders atomic.Uint64
}

// maxEntriesInFlight bounds the entries proposed and not yet applied. One
// measured best (2026-11-25): 1, 2, 4 and unbounded gave 6,708,
// 4,591, 4,082 and 3,883 orders/s at 64 writers, and 1 was as fast as the
// rest at one writer. Raft's per-entry costs (msgpack, a BoltDB put and
// fsync'd commit per batch, a future) are paid once per packed entry.
// Read safety does not depend on this bound: the read index is the commit
// index, whatever the FSM has applied (docs/reads.md).
const maxEntriesInFlight = 1

type proposal struct {
	cmd  fsm.PlaceOrder
	done chan proposed // buffered: the waiter never blocks on a gone caller
}

type proposed struct {
	res fsm.Outcome // the FSM's answer, if err is nil
	err error       // raft's: the entry's fate
}

func newProposer(rt *routines.Group, r *raft.Raft, await func(raft.Future) error, timeout time.Duration) *proposer {
	p := &proposer{raft: r, await: await, timeout: timeout, in: make(chan *proposal, fsm.MaxOrdersPerEntry),
		slots: make(chan struct{}, maxEntriesInFlight), routines: rt}
	rt.Go(p.loop)
	return p
}

// propose hands an order over and waits for its entry to be applied. If
// ctx ends first the order may still be applied: the caller must treat
// that as an unknown outcome (it does: Timeout).
func (p *proposer) propose(ctx context.Context, cmd fsm.PlaceOrder) (fsm.Outcome, error) {
	pr := &proposal{cmd: cmd, done: make(chan proposed, 1)}
	select {
	case p.in <- pr:
	case <-ctx.Done():
		return fsm.Outcome{}, fmt.Errorf("%w: %v", ErrBusy, ctx.Err())
	}
	select {
	case r := <-pr.done:
		return r.res, r.err
	case <-ctx.Done():
		return fsm.Outcome{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, ctx.Err())
	}
}

// drainPerEntry bounds how many arrived orders the loop takes in before
// packing one entry; the rest wait in p.in for the next.
const drainPerEntry = 8 * fsm.MaxOrdersPerEntry

// loop packs entries. An entry holds at most one order per customer, so
// that an order's index names one state of its record, and a client's
// orders are applied in the order it sent them. Orders wait per client
// (waiting): a client that floods one customer gets one order per entry
// and holds no one else up (TestOneCustomerFloodStarvesNoOne).
func (p *proposer) loop(ctx context.Context) {
	w := newWaiting()
	for {
		if w.n == 0 {
			select {
			case pr := <-p.in:
				w.add(pr)
			case <-ctx.Done():
				return
			}
		}
		select { // while Raft is busy, more orders queue up for this entry
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			w.fail(fmt.Errorf("%w: the group is closing", ErrNotProposed))
			return
		}
	drain:
		for range drainPerEntry {
			select {
			case pr := <-p.in:
				w.add(pr)
			default:
				break drain
			}
		}
		p.submit(w.pack())
	}
}

// waiting holds the orders not yet proposed, per client; clients are in
// the order their oldest waiting order arrived.
type waiting struct {
	clients []*clientOrders
	byID    map[uint64]*clientOrders
	n       int // orders
}

type clientOrders struct {
	id     uint64
	orders []*proposal // in arrival order
}

func newWaiting() *waiting { return &waiting{byID: make(map[uint64]*clientOrders)} }

func (w *waiting) add(pr *proposal) {
	q := w.byID[pr.cmd.ClientID]
	if q == nil {
		q = &clientOrders{id: pr.cmd.ClientID}
		w.byID[q.id] = q
		w.clients = append(w.clients, q)
	}
	q.orders = append(q.orders, pr)
	w.n++
}

// pack takes the orders of one entry: client by client, each client's
// orders in order until one is for a customer already in the entry (that
// one and the client's later orders wait), at most fsm.MaxOrdersPerEntry.
// The cost is one step per waiting client, not per waiting order.
func (w *waiting) pack() []*proposal {
	var batch []*proposal
	customers := make(map[int32]bool)
	for _, q := range w.clients {
		for len(q.orders) > 0 && len(batch) < fsm.MaxOrdersPerEntry && !customers[q.orders[0].cmd.CustomerID] {
			pr := q.orders[0]
			q.orders[0] = nil
			q.orders = q.orders[1:]
			customers[pr.cmd.CustomerID] = true
			batch = append(batch, pr)
		}
		if len(batch) == fsm.MaxOrdersPerEntry {
			break
		}
	}
	w.n -= len(batch)
	kept := w.clients[:0]
	for _, q := range w.clients {
		if len(q.orders) > 0 {
			kept = append(kept, q)
		} else {
			delete(w.byID, q.id)
		}
	}
	clear(w.clients[len(kept):])
	w.clients = kept
	return batch
}

// fail answers every waiting order with err (the loop is ending).
func (w *waiting) fail(err error) {
	for _, q := range w.clients {
		for _, pr := range q.orders {
			pr.done <- proposed{err: err}
		}
	}
}

// submit proposes one entry and leaves a waiter to hand out the answers.
func (p *proposer) submit(batch []*proposal) {
	p.entries.Add(1)
	p.orders.Add(uint64(len(batch)))
	var data []byte
	if len(batch) == 1 {
		data = fsm.AppendPlaceOrder(make([]byte, 0, 48), batch[0].cmd)
	} else {
		cmds := make([]fsm.PlaceOrder, len(batch))
		for i, pr := range batch {
			cmds[i] = pr.cmd
		}
		data = fsm.AppendPlaceOrders(make([]byte, 0, 3+len(batch)*48), cmds)
	}
	f := p.raft.Apply(data, p.timeout)
	p.routines.Go(func(context.Context) {
		err := p.await(f)
		<-p.slots
		var res fsm.Result
		if err == nil {
			res = fsm.ResultOf(f.Response())
			if res.Len() != len(batch) {
				err = fmt.Errorf("entry of %d orders answered %d outcomes", len(batch), res.Len())
			}
		}
		for i, pr := range batch {
			r := proposed{err: err}
			if err == nil {
				r.res = res.Outcome(i)
			}
			pr.done <- r
		}
	})
}
