package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"orderly/client"
	"orderly/wire"
)

// workload runs concurrent clients against the cluster: half through the
// balancer, half straight to the nodes (each reading from a node of its
// own and following the leader for writes). They place orders and read
// records, mostly linearizably, some at session level, and now and then
// resend an acknowledged order with the same seq, which must not apply it
// again.
type workload struct {
	clients   int
	customers int
	timeout   time.Duration
	lbAddr    string
	nodeAddrs []string
	seed      uint64
	start     time.Time

	hist    history
	numbers []atomic.Int32 // per customer: the last order number handed out

	mu          sync.Mutex
	doubleApply []string // resends that were applied again
}

func newWorkload(clients, customers int, lbAddr string, nodeAddrs []string, seed uint64, start time.Time) *workload {
	return &workload{clients: clients, customers: customers, timeout: 4 * time.Second, lbAddr: lbAddr,
		nodeAddrs: nodeAddrs, seed: seed, start: start, numbers: make([]atomic.Int32, customers)}
}

// run drives every client until ctx ends and waits for them.
func (w *workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, i)
		}()
	}
	wg.Wait()
}

func (w *workload) client(ctx context.Context, i int) {
	via, addrs := "balancer", []string{w.lbAddr}
	if i%2 == 1 || w.lbAddr == "" {
		// Straight to the nodes, starting at one of its own, where its
		// reads stay while that node answers.
		via = "nodes"
		k := (i / 2) % len(w.nodeAddrs)
		addrs = append(append([]string{}, w.nodeAddrs[k:]...), w.nodeAddrs[:k]...)
	}
	c, err := client.New(client.Options{Addrs: addrs, RetryTimeout: w.timeout})
	if err != nil {
		return
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return
	}
	rng := rand.New(rand.NewPCG(w.seed, uint64(i)))
	for ctx.Err() == nil {
		cust := int32(rng.IntN(w.customers))
		op := Op{Client: i, Via: via, Customer: cust}
		switch p := rng.IntN(100); {
		case p < 50:
			w.order(ctx, s, rng, op)
		case p < 85:
			w.read(ctx, c, op, wire.Linearizable)
		default:
			w.read(ctx, c, op, wire.Session)
		}
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
	}
}

func (w *workload) since() time.Duration { return time.Since(w.start) }

func (w *workload) order(ctx context.Context, s *client.Session, rng *rand.Rand, op Op) {
	op.Kind = OpOrder
	op.Number = w.numbers[op.Customer].Add(1)
	typ := wire.Regular
	if op.Number%3 == 0 {
		typ = wire.Custom
	}
	op.Call = w.since()
	li, err := s.Order(context.WithoutCancel(ctx), op.Customer, op.Number, typ)
	op.Return = w.since()
	op.Outcome, op.Err = outcomeOf(err)
	if err == nil {
		op.Count, op.Last, op.Index = li.OrderCount, li.OrderNumber, li.Index
	}
	w.hist.add(op)
	if err == nil && rng.IntN(10) == 0 {
		// A duplicate delivery: the same (client_id, seq) again. It must
		// come back with the first answer, not be applied a second time.
		again, err := s.RetryLast(context.WithoutCancel(ctx))
		if err == nil && again.Index != li.Index {
			w.mu.Lock()
			w.doubleApply = append(w.doubleApply, fmt.Sprintf("customer %d order %d: first applied at index %d, its resend again at %d",
				op.Customer, op.Number, li.Index, again.Index))
			w.mu.Unlock()
		}
	}
}

func (w *workload) read(ctx context.Context, c *client.Client, op Op, cons wire.Consistency) {
	op.Kind, op.Consistency = OpRead, cons
	op.Call = w.since()
	r, err := c.Get(context.WithoutCancel(ctx), op.Customer, cons)
	op.Return = w.since()
	op.Outcome, op.Err = outcomeOf(err)
	if err != nil {
		op.Outcome = Failed // a read changes nothing: failed or unknown is the same
	} else {
		op.Count, op.Last, op.Index = r.OrderCount, r.LastOrder, r.ReadIndex
	}
	w.hist.add(op)
}

// outcomeOf sorts an error into failed (surely not applied) or unknown.
func outcomeOf(err error) (Outcome, string) {
	switch {
	case err == nil:
		return OK, ""
	case errors.Is(err, client.ErrUnknownOutcome):
		return Unknown, err.Error()
	}
	if code, ok := wire.CodeOf(err); ok && !code.Unknown() {
		return Failed, err.Error()
	}
	return Unknown, err.Error()
}
