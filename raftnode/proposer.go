package raftnode

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/wire"
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
	raft    *raft.Raft
	timeout time.Duration
	in      chan *proposal
	slots   chan struct{} // one per entry in flight

	wg sync.WaitGroup // the loop and one waiter per entry in flight

	// entries and orders count what was proposed (metrics: orders per entry).
	entries, orders atomic.Uint64
}

// maxEntriesInFlight bounds the entries proposed and not yet applied. One
// measured best (docs/performance.md): 1, 2, 4 and unbounded gave 6,708,
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

func newProposer(ctx context.Context, r *raft.Raft, timeout time.Duration) *proposer {
	p := &proposer{raft: r, timeout: timeout, in: make(chan *proposal, fsm.MaxOrdersPerEntry),
		slots: make(chan struct{}, maxEntriesInFlight)}
	p.wg.Add(1)
	go p.loop(ctx)
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
		return fsm.Outcome{}, wire.Errorf(wire.CodeOverloaded, "order not proposed in time: %v", ctx.Err())
	}
	select {
	case r := <-pr.done:
		return r.res, r.err
	case <-ctx.Done():
		return fsm.Outcome{}, wire.Errorf(wire.CodeTimeout, "outcome unknown: %v", ctx.Err())
	}
}

// lookAhead bounds how many waiting orders the loop holds and scans for
// one entry.
const lookAhead = 4 * fsm.MaxOrdersPerEntry

// loop packs entries. An entry holds at most one order per customer, so
// that an order's index names one state of its record; an order whose
// customer is taken waits for the next entry, and so does every later
// order of its client (a client's orders are applied in the order it sent
// them). Every other waiting order goes in: a client that floods one
// customer gets one order per entry, not a queue that everyone behind it
// waits out (TestOneCustomerFloodStarvesNoOne).
func (p *proposer) loop(ctx context.Context) {
	defer p.wg.Done()
	var waiting []*proposal // arrived, not yet proposed, in arrival order
	for {
		if len(waiting) == 0 {
			select {
			case pr := <-p.in:
				waiting = append(waiting, pr)
			case <-ctx.Done():
				return
			}
		}
		select { // while Raft is busy, more orders queue up for this entry
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			for _, pr := range waiting {
				pr.done <- proposed{err: wire.Errorf(wire.CodeUnavailable, "node shutting down; order not proposed")}
			}
			return
		}
	drain:
		for len(waiting) < lookAhead {
			select {
			case pr := <-p.in:
				waiting = append(waiting, pr)
			default:
				break drain
			}
		}
		var batch []*proposal
		batch, waiting = pack(waiting)
		p.submit(batch)
	}
}

// pack takes from waiting the orders of one entry: in arrival order, the
// first order of each customer, skipping a client whose earlier order was
// skipped. It returns the entry and the rest, still in arrival order.
func pack(waiting []*proposal) (batch, rest []*proposal) {
	customers := make(map[int32]bool, len(waiting))
	var held map[uint64]bool // clients with an order left for later
	rest = waiting[:0:0]
	for _, pr := range waiting {
		c := pr.cmd
		if len(batch) == fsm.MaxOrdersPerEntry || customers[c.CustomerID] || held[c.ClientID] {
			if held == nil {
				held = make(map[uint64]bool)
			}
			held[c.ClientID] = true
			rest = append(rest, pr)
			continue
		}
		customers[c.CustomerID] = true
		batch = append(batch, pr)
	}
	return batch, rest
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
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := f.Error()
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
	}()
}

// wait returns when the loop has stopped (its ctx ended) and every entry
// in flight has been answered (raft shutdown answers the rest).
func (p *proposer) wait() { p.wg.Wait() }
