package traffic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"orderly/chaos/model"
	"orderly/client"
	"orderly/internal/wait"
	"orderly/wire"
)

// Load profiles (Config.Load).
const (
	LoadNormal = "normal" // Clients with short pauses: ~1,000 ops/s
	LoadHigh   = "high"   // plus HighClients back to back for the whole run
	LoadMixed  = "mixed"  // HighClients only in the middle half of the run
)

// Workload runs concurrent clients against the cluster: half through the
// balancer, half straight to the nodes (each reading from a node of its
// own and following the leader for writes), and a seed-protocol reader
// per four. They place orders and read records, mostly linearizably, some
// at session level, and now and then resend an acknowledged order with the
// same seq, which must not apply it again. Under high load, more clients
// run without pauses on customers of their own (so porcupine's partitions
// stay small).
type Workload struct {
	clients, highClients     int
	customers, highCustomers int
	load                     string
	duration                 time.Duration
	timeout                  time.Duration
	tls                      func(string) *tls.Config
	lbAddr, legacyAddr       string
	nodeAddrs                []string
	seed                     uint64
	start                    time.Time
	forgetUnknown            bool

	hist    history
	numbers []atomic.Int32 // per customer: the last order number handed out

	mu          sync.Mutex
	doubleApply []string // resends that were applied again
}

// Config configures a Workload.
type Config struct {
	Clients, Customers         int    // the normal clients and the customers they contend on
	HighClients, HighCustomers int    // the high-load clients and their own customers
	Load                       string // LoadNormal, LoadHigh or LoadMixed
	Duration                   time.Duration
	Seed                       uint64
	LBAddr, LegacyAddr         string   // the balancer's orderly and seed-protocol ports
	NodeAddrs                  []string // the nodes' client ports
	Start                      time.Time
	// TLS is the clients' (a writer's would do; the admin's is used), nil
	// for an --insecure cluster. The seed port is plaintext regardless.
	TLS func(string) *tls.Config
	// Timeout is the clients' retry budget per call; default 4 s.
	Timeout time.Duration
	// ForgetUnknown breaks the clients on purpose (the checker's test):
	// a write's error is sorted by its last attempt's code, as if no
	// earlier attempt had been lost.
	ForgetUnknown bool
}

// New returns a workload; Run drives it.
func New(cfg Config) *Workload {
	w := &Workload{clients: cfg.Clients, customers: cfg.Customers, load: cfg.Load, duration: cfg.Duration,
		timeout: cfg.Timeout, lbAddr: cfg.LBAddr, legacyAddr: cfg.LegacyAddr, nodeAddrs: cfg.NodeAddrs, seed: cfg.Seed, start: cfg.Start, tls: cfg.TLS,
		forgetUnknown: cfg.ForgetUnknown}
	if w.timeout <= 0 {
		w.timeout = 4 * time.Second
	}
	if cfg.Load != LoadNormal {
		w.highClients, w.highCustomers = cfg.HighClients, cfg.HighCustomers
	}
	w.numbers = make([]atomic.Int32, w.AllCustomers())
	return w
}

// AllCustomers counts the customers of every client: [0, customers) for
// the normal ones, then the high-load clients' own.
func (w *Workload) AllCustomers() int { return w.customers + w.highCustomers }

// Run drives every client until ctx ends and waits for them.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	spawn := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	for i := range w.clients {
		spawn(func() { w.client(ctx, i, nil, "") })
	}
	if w.legacyAddr != "" {
		for i := range max(1, w.clients/4) {
			spawn(func() { w.seedReader(ctx, w.clients+w.highClients+i) })
		}
	}
	if w.highClients > 0 {
		spawn(func() {
			hctx := ctx
			if w.load == LoadMixed { // the middle half of the run
				if !wait.Sleep(ctx, w.duration/4) {
					return
				}
				var cancel context.CancelFunc
				hctx, cancel = context.WithTimeout(ctx, w.duration/2)
				defer cancel()
			}
			// Sixteen high-load clients share each connection set, as
			// bench's do: requests in flight together share syscalls.
			var shared []*client.Client
			var vias []string
			for i := range max(1, w.highClients/16) {
				c, err := client.New(client.Options{Addrs: w.addrsFor(i), RetryTimeout: w.timeout, DialTimeout: w.timeout, TLS: w.tls})
				if err != nil {
					continue
				}
				defer c.Close()
				shared, vias = append(shared, c), append(vias, w.via(i))
			}
			if len(shared) == 0 {
				return
			}
			var hwg sync.WaitGroup
			for i := range w.highClients {
				hwg.Add(1)
				go func() {
					defer hwg.Done()
					w.client(hctx, w.clients+i, shared[i%len(shared)], vias[i%len(shared)])
				}()
			}
			hwg.Wait()
		})
	}
	wg.Wait()
}

// addrsFor is where client i connects: the balancer for even i, straight
// to the nodes for odd i, starting at one of its own, where its reads stay
// while that node answers.
func (w *Workload) addrsFor(i int) []string {
	if i%2 == 0 && w.lbAddr != "" {
		return []string{w.lbAddr}
	}
	k := (i / 2) % len(w.nodeAddrs)
	return append(append([]string{}, w.nodeAddrs[k:]...), w.nodeAddrs[:k]...)
}

// via names how client i reaches the cluster (addrsFor).
func (w *Workload) via(i int) string {
	if i%2 == 0 && w.lbAddr != "" {
		return model.ViaBalancer
	}
	return model.ViaNodes
}

// client runs client i until ctx ends: on its own connections, or (high
// load) on shared ones.
func (w *Workload) client(ctx context.Context, i int, shared *client.Client, via string) {
	high := shared != nil
	c := shared
	if !high {
		var err error
		if c, err = client.New(client.Options{Addrs: w.addrsFor(i), RetryTimeout: w.timeout, DialTimeout: w.timeout, TLS: w.tls}); err != nil {
			return
		}
		defer c.Close()
		via = w.via(i)
	}
	s, err := c.NewSession()
	if err != nil {
		return
	}
	rng := rand.New(rand.NewPCG(w.seed, uint64(i)))
	first, n := 0, w.customers
	if high {
		first, n = w.customers, w.highCustomers
	}
	// Half orders normally; a quarter under high load, where reads (which
	// cost the cluster less) make up the rest of the rate.
	orders := 50
	if high {
		orders = 25
	}
	for ctx.Err() == nil {
		cust := int32(first + rng.IntN(n))
		op := model.Op{Client: i, Via: via, Customer: cust}
		switch p := rng.IntN(100); {
		case p < orders:
			w.order(ctx, s, rng, op, high)
		case p < 85:
			w.read(ctx, c, op, wire.Linearizable)
		default:
			w.read(ctx, c, op, wire.Session)
		}
		if !high {
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		}
	}
}

// Since is the time since the run's start, the clock of the history.
func (w *Workload) Since() time.Duration { return time.Since(w.start) }

// Ops is the history so far.
func (w *Workload) Ops() []model.Op { return w.hist.all() }

// Record adds an operation made outside the workload (the final reads).
func (w *Workload) Record(op model.Op) { w.hist.add(op) }

// DoubleApply lists the resends that were applied again.
func (w *Workload) DoubleApply() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.doubleApply...)
}

func (w *Workload) order(ctx context.Context, s *client.Session, rng *rand.Rand, op model.Op, high bool) {
	op.Kind = model.OpOrder
	op.Number = w.numbers[op.Customer].Add(1)
	// A custom order holds one of the leader's four experts until it is
	// applied, as in the seed: under high load they are rarer, or the
	// experts and not the cluster set the pace.
	customEvery, resendOneIn := int32(3), 10
	if high {
		customEvery, resendOneIn = 50, 50
	}
	typ := wire.Regular
	if op.Number%customEvery == 0 {
		typ = wire.Custom
	}
	op.Call = w.Since()
	li, err := s.Order(context.WithoutCancel(ctx), op.Customer, op.Number, typ)
	if out, _ := w.writeOutcome(err); out == model.Unknown {
		li, err = w.resolve(ctx, s, li, err)
	}
	op.Return = w.Since()
	op.Outcome, op.Err = w.writeOutcome(err)
	if err == nil {
		op.Count, op.Last, op.Index = li.OrderCount, li.OrderNumber, li.Index
	}
	w.hist.add(op)
	if err == nil && rng.IntN(resendOneIn) == 0 {
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

// resolveFor bounds how long a client resends an order whose outcome is
// unknown.
const resolveFor = time.Minute

// resolve resends the session's last order, with its (client_id, seq),
// until the outcome is known, as a careful client does: the first answer
// if it had been applied, or its application now. A refused resend does
// not end it: the session keeps the outcome unknown until an answer comes. A history of known
// outcomes keeps porcupine's search small; every unknown order stays
// pending to the end of the history and multiplies the orders it must
// consider (a 10-minute run with eight restart-alls exhausted 24 GB).
// Once the run ends it stops: the last orders may stay unknown.
func (w *Workload) resolve(ctx context.Context, s *client.Session, li wire.LaptopInfo, err error) (wire.LaptopInfo, error) {
	deadline := time.Now().Add(resolveFor)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if !wait.Sleep(ctx, 50*time.Millisecond) {
			break
		}
		li, err = s.RetryLast(context.WithoutCancel(ctx))
		if out, _ := w.writeOutcome(err); out != model.Unknown {
			break
		}
	}
	return li, err
}

func (w *Workload) read(ctx context.Context, c *client.Client, op model.Op, cons wire.Consistency) {
	op.Kind, op.Consistency = model.OpRead, cons
	op.Call = w.Since()
	r, err := c.Get(context.WithoutCancel(ctx), op.Customer, cons)
	op.Return = w.Since()
	op.Outcome, op.Err = outcomeOf(err)
	if err != nil {
		op.Outcome = model.Failed // a read changes nothing: failed or unknown is the same
	} else {
		op.Count, op.Last, op.Index = r.OrderCount, r.LastOrder, r.ReadIndex
	}
	w.hist.add(op)
}

// writeOutcome is outcomeOf for a write, or with ForgetUnknown the broken
// client's view: the last attempt's refusal taken for the write's fate.
func (w *Workload) writeOutcome(err error) (model.Outcome, string) {
	if code, ok := wire.CodeOf(err); w.forgetUnknown && ok && !code.Unknown() {
		return model.Failed, err.Error()
	}
	return outcomeOf(err)
}

// outcomeOf sorts an error into failed (surely not applied) or unknown.
func outcomeOf(err error) (model.Outcome, string) {
	switch {
	case err == nil:
		return model.OK, ""
	case errors.Is(err, client.ErrUnknownOutcome):
		return model.Unknown, err.Error()
	}
	if code, ok := wire.CodeOf(err); ok && !code.Unknown() {
		return model.Failed, err.Error()
	}
	return model.Unknown, err.Error()
}
