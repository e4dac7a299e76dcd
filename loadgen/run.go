package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/time/rate"

	"orderly/client"
	"orderly/wire"
)

// Result is what a run measured.
type Result struct {
	Customers   int      `json:"customers"`
	Pipeline    int      `json:"pipeline"`
	Conns       int      `json:"conns"`
	Mix         Mix      `json:"type"`
	ReadPct     int      `json:"read_pct"`
	Consistency string   `json:"consistency"`
	Addrs       []string `json:"addrs"`

	Elapsed    time.Duration `json:"-"`
	ElapsedSec float64       `json:"elapsed_s"`
	Ops        int64         `json:"ops"`
	Writes     int64         `json:"writes"`
	Reads      int64         `json:"reads"`
	Errors     int64         `json:"errors"`
	Retries    uint64        `json:"retries"`
	Redirects  uint64        `json:"redirects"`
	Throughput float64       `json:"ops_per_s"`
	Latency    Summary       `json:"latency"`
	Write      Summary       `json:"write_latency"`
	Read       Summary       `json:"read_latency"`
	Timeline   []Second      `json:"timeline"`
	// Watched is how many orders the watchers received (each counted per
	// watcher), WatchedPerSec per watcher per second.
	Watched       int64    `json:"watched,omitempty"`
	WatchedPerSec float64  `json:"watched_per_s,omitempty"`
	FirstErrors   []string `json:"first_errors,omitempty"`
}

// Run drives the cluster as cfg says and returns what it measured. It
// stops at ctx's end, after cfg.Duration, or when every customer is done.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.RetryTimeout <= 0 {
		cfg.RetryTimeout = 10 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	nclients := cfg.Conns
	if nclients == 0 || nclients > cfg.Customers {
		nclients = cfg.Customers
	}
	if cfg.Seed || cfg.HTTP != "" {
		nclients = 0
	}
	var apis []apiClient
	if cfg.HTTP != "" {
		var err error
		if apis, err = newHTTPAPIs(&cfg); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		for _, a := range apis {
			defer a.close()
		}
	}
	clients := make([]*client.Client, nclients)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	var workers []*worker
	for i := range clients {
		c, err := client.New(client.Options{Addrs: cfg.Addrs, RetryTimeout: cfg.RetryTimeout, TLS: cfg.TLS})
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	// newWorker is the p-th request in flight of customer i.
	var limiter *rate.Limiter
	if cfg.Rate > 0 { // a burst of 10 ms of the rate: fewer timer waits at high rates
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/100)))
	}
	newWorker := func(i, p int, cust *customer) *worker {
		w := &worker{cfg: &cfg, cust: cust, rng: rand.New(rand.NewPCG(uint64(i), uint64(p))), writes: newHistogram(), reads: newHistogram(),
			limiter: limiter}
		workers = append(workers, w)
		return w
	}
	for i := range cfg.Customers {
		id := cfg.FirstCustomer + int32(i)
		switch {
		case cfg.Seed:
			sc, err := dialSeed(ctx, cfg.Addrs[0])
			if err != nil {
				return nil, err
			}
			defer sc.close()
			newWorker(i, 0, &customer{id: id}).seed = sc
		case apis != nil:
			newWorker(i, 0, &customer{id: id}).api = apis[i%len(apis)]
		default:
			c := clients[i%nclients]
			cust := &customer{id: id, c: c}
			for p := range cfg.Pipeline {
				s, err := c.NewSession()
				if err != nil {
					return nil, err
				}
				newWorker(i, p, cust).session = s
			}
		}
	}

	var watched atomic.Int64
	wctx, stopWatch := context.WithCancel(ctx)
	var wwg sync.WaitGroup
	for range cfg.Watchers {
		c, err := client.New(client.Options{Addrs: cfg.Addrs, RetryTimeout: cfg.RetryTimeout, TLS: cfg.TLS})
		if err != nil {
			stopWatch()
			return nil, err
		}
		defer c.Close()
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			watchEvery(wctx, c, cfg.WatchFrom, func(e wire.Events) { watched.Add(int64(len(e.Events))) })
		}()
	}

	tl := newTimeline()
	var ops, errs atomic.Int64
	var placed atomic.Int64 // new customers handed out (Config.NewCustomers)
	for _, w := range workers {
		w.placed = &placed
	}
	start := time.Now()
	stopProgress := startProgress(cfg.Progress, cfg.PlainProgress, start, &ops, &errs)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, start, tl, &ops, &errs)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	time.Sleep(watchGrace(cfg.Watchers)) // the last orders' events are on their way
	stopWatch()
	wwg.Wait()

	res := &Result{Customers: cfg.Customers, Pipeline: cfg.Pipeline, Conns: nclients, Mix: cfg.Mix, ReadPct: cfg.ReadPct,
		Consistency: cfg.Consistency.String(), Addrs: cfg.Addrs, Elapsed: elapsed, ElapsedSec: elapsed.Seconds()}
	all, writes, reads := newHistogram(), newHistogram(), newHistogram()
	for _, w := range workers {
		all.Merge(w.writes)
		all.Merge(w.reads)
		writes.Merge(w.writes)
		reads.Merge(w.reads)
		res.Errors += w.errors
		for _, e := range w.firstErrors {
			if len(res.FirstErrors) < 5 {
				res.FirstErrors = append(res.FirstErrors, e)
			}
		}
	}
	for _, c := range clients {
		if c == nil {
			continue
		}
		res.Retries += c.Stats.Retries.Load()
		res.Redirects += c.Stats.Redirects.Load()
	}
	res.Latency, res.Write, res.Read = summarize(all), summarize(writes), summarize(reads)
	res.Ops, res.Writes, res.Reads = all.TotalCount(), writes.TotalCount(), reads.TotalCount()
	res.Throughput = float64(res.Ops) / elapsed.Seconds()
	res.Timeline = tl.seconds()
	if cfg.Watchers > 0 {
		res.Watched = watched.Load()
		res.WatchedPerSec = float64(res.Watched) / float64(cfg.Watchers) / elapsed.Seconds()
	}
	if full := int(elapsed / time.Second); full >= 1 && len(res.Timeline) > full {
		res.Timeline = res.Timeline[:full] // the last second is partial
	}
	return res, nil
}

// watchGrace is how long watchers go on after the load stops.
func watchGrace(watchers int) time.Duration {
	if watchers == 0 {
		return 0
	}
	return 200 * time.Millisecond
}

func pastDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// customer is shared by its pipelined workers.
type customer struct {
	id   int32
	c    *client.Client
	next atomic.Int64 // operations started
}

// worker is one request in flight for a customer.
type worker struct {
	cfg     *Config
	cust    *customer
	session *client.Session
	seed    *seedConn // with Config.Seed, instead of the session
	api     apiClient // with Config.HTTP, instead of the session
	rng     *rand.Rand

	// Two histograms per worker, merged into the overall one at the end:
	// a third recorded per operation showed in the generator's profile.
	writes, reads *hdrhistogram.Histogram
	errors        int64
	firstErrors   []string
	placed        *atomic.Int64 // shared count of new customers handed out
	limiter       *rate.Limiter // Config.Rate's, shared; nil: no bound
}

func (w *worker) run(ctx context.Context, start time.Time, tl *timeline, ops, errs *atomic.Int64) {
	for ctx.Err() == nil {
		id, n := w.cust.id, w.cust.next.Add(1)
		if w.cfg.NewCustomers > 0 {
			k := int(w.placed.Add(1))
			if k > w.cfg.NewCustomers {
				return
			}
			id, n = NewCustomerID(k), 1
		} else if w.cfg.Orders > 0 && n > int64(w.cfg.Orders) {
			return
		}
		read := w.rng.IntN(100) < w.cfg.ReadPct
		if w.limiter != nil && w.limiter.Wait(ctx) != nil {
			return // ctx ends before a token comes
		}
		t0 := time.Now()
		err := w.op(ctx, read, id, int32(n))
		d := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil || pastDeadline(ctx) {
				// Cut off by the deadline (a connection's own deadline,
				// the seed port's, may fire before ctx says so): neither
				// an error nor a sample.
				return
			}
			w.errors++
			errs.Add(1)
			if len(w.firstErrors) < 2 {
				w.firstErrors = append(w.firstErrors, err.Error())
			}
			tl.add(t0.Sub(start), 0, true)
			continue
		}
		ops.Add(1)
		if read {
			record(w.reads, d)
		} else {
			record(w.writes, d)
		}
		tl.add(t0.Add(d).Sub(start), d, false)
	}
}

func (w *worker) op(ctx context.Context, read bool, id, n int32) error {
	typ := wire.Regular
	if w.cfg.Mix == MixCustom || (w.cfg.Mix == MixMixed && n%2 == 0) {
		typ = wire.Custom
	}
	switch {
	case w.seed != nil:
		return w.seed.do(ctx, id, n, read, typ)
	case w.api != nil:
		return w.api.do(ctx, id, n, read, typ, w.cfg.Consistency)
	case read:
		_, err := w.cust.c.Get(ctx, id, w.cfg.Consistency)
		return err
	}
	_, err := w.session.Order(ctx, id, n, typ)
	return err
}

// startProgress prints a live line every second until the returned func
// is called.
func startProgress(out io.Writer, plain bool, start time.Time, ops, errs *atomic.Int64) func() {
	if out == nil {
		return func() {}
	}
	prefix, suffix := "\r", " "
	if plain {
		prefix, suffix = "", "\n"
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-done:
				if !plain {
					fmt.Fprintln(out)
				}
				return
			case <-tick.C:
				n := ops.Load()
				fmt.Fprintf(out, "%s%5.0fs  %9d ops  %8d ops/s  %d errors%s", prefix, time.Since(start).Seconds(), n, n-last, errs.Load(), suffix)
				last = n
			}
		}
	}()
	return func() { close(done); <-finished }
}

// watchEvery follows every customer's orders from index from (of every
// shard of a sharded cluster) until ctx ends; a watch that ends early
// shows as fewer orders watched.
func watchEvery(ctx context.Context, c *client.Client, from uint64, fn func(wire.Events)) {
	if n, err := c.ShardCount(ctx); err == nil && n > 1 {
		pos := make([]uint64, n)
		for i := range pos {
			pos[i] = from
		}
		c.WatchShards(ctx, pos, func(_ uint32, e wire.Events) error { fn(e); return nil }) //nolint:errcheck // see above
		return
	}
	c.Watch(ctx, from, wire.WatchAll, func(e wire.Events) error { fn(e); return nil }) //nolint:errcheck // see above
}
