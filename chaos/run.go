package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"orderly/client"
	"orderly/wire"
)

// Options configure a chaos run.
type Options struct {
	BinDir    string        // holds orderd and orderlb
	ReportDir string        // summary, timeline chart, history; porcupine's HTML on a failure
	Duration  time.Duration // of the workload under faults
	Seed      uint64
	Nemeses   []string
	Nodes     int // default 3
	Clients   int // default 6: half through the balancer, half to the nodes
	Customers int // default 4: few, so that clients contend
	// Load is the workload's profile: LoadNormal (default), LoadHigh, or
	// LoadMixed (high load in the middle half of the run).
	Load string
	// HighClients run back to back, without pauses, while the load is
	// high, on customers of their own (default 48 clients on 256 customers).
	HighClients, HighCustomers int
	// MinOrders and MinReads: a run passes only if at least this many
	// orders were acknowledged and linearizable reads answered (default
	// 100 each): a cluster that refuses everything proves nothing.
	MinOrders, MinReads int
	// RecoverWithin bounds, after each healed fault, the wait for an
	// acknowledged write and for the target to catch up (default 20 s).
	RecoverWithin time.Duration
	// Fault is a faults-build test fault (ORDERLY_TEST_FAULT) for every
	// node: the run must then fail its checks.
	Fault string
	// SkipHeal is the checker's own test: the nemesis leaves each fault in
	// place until the end of the run, so no node recovers; the run must
	// then fail its checks.
	SkipHeal bool
	// Docker runs the compose cluster of ComposeFile with Image instead of
	// local processes; the nemeses use docker kill, pause and network
	// disconnect.
	Docker      bool
	ComposeFile string // default deploy/compose.yaml
	Image       string // default orderly:dev
	Logf        func(format string, args ...any)
}

// Report is the outcome of a run.
type Report struct {
	Seed     uint64        `json:"seed"`
	Nemeses  []string      `json:"nemeses"`
	Fault    string        `json:"test_fault,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Interrupted is how long the workload ran when the operator stopped
	// it early (0: it ran its Duration).
	Interrupted time.Duration `json:"interrupted_after_ns,omitempty"`
	Ops         int           `json:"ops"`
	Load        string        `json:"load"`
	// PeakRate is the most operations completed per second over any ten
	// seconds of the run; MeanRate over the whole run.
	PeakRate float64        `json:"peak_ops_per_sec"`
	MeanRate float64        `json:"mean_ops_per_sec"`
	OpCounts map[string]int `json:"op_counts"`
	Faults   []Fault        `json:"faults"`
	Verdicts []Verdict      `json:"verdicts"`
	// Outage per fault kind: from the fault's start to the first write
	// acknowledged that was invoked after it, worst and median.
	Outages map[string]Outage `json:"outages"`
}

// Outage summarises write outages after one kind of fault.
type Outage struct {
	Count  int           `json:"count"`
	Median time.Duration `json:"median_ns"`
	Worst  time.Duration `json:"worst_ns"`
}

// Pass reports whether every check passed.
func (r *Report) Pass() bool {
	for _, v := range r.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return len(r.Verdicts) > 0
}

// Run starts a cluster and a balancer in ReportDir, runs the workload
// under the nemeses for Duration, heals everything, reads every customer's
// final record, and checks the history. It stops everything it started.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Nodes == 0 {
		opt.Nodes = 3
	}
	if opt.Clients == 0 {
		opt.Clients = 6
	}
	if opt.Customers == 0 {
		opt.Customers = 4
	}
	if opt.HighClients == 0 {
		opt.HighClients = 128
	}
	if opt.HighCustomers == 0 {
		opt.HighCustomers = 256
	}
	if opt.MinOrders == 0 {
		opt.MinOrders = 100
	}
	if opt.MinReads == 0 {
		opt.MinReads = 100
	}
	if opt.RecoverWithin == 0 {
		opt.RecoverWithin = 20 * time.Second
	}
	if opt.Load == "" {
		opt.Load = LoadNormal
	}
	if !slices.Contains([]string{LoadNormal, LoadHigh, LoadMixed}, opt.Load) {
		return nil, fmt.Errorf("load %q: want %s, %s or %s", opt.Load, LoadNormal, LoadHigh, LoadMixed)
	}
	if opt.Docker {
		for _, k := range opt.Nemeses {
			if slices.Contains(LocalOnly, k) {
				return nil, fmt.Errorf("nemesis %s: %w", k, errNotInDocker)
			}
		}
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.ComposeFile == "" {
		opt.ComposeFile = filepath.Join("deploy", "compose.yaml")
	}
	if opt.Image == "" {
		opt.Image = "orderly:dev"
	}
	if err := os.MkdirAll(opt.ReportDir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	// A failed earlier run's porcupine page must not sit next to this run's
	// report; the other files are rewritten.
	if err := os.Remove(filepath.Join(opt.ReportDir, "linearizability.html")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	var t target
	if opt.Docker {
		d, stop, err := startDocker(ctx, opt)
		if err != nil {
			return nil, err
		}
		defer stop()
		t = d
	} else {
		l, stop, err := startLocal(ctx, opt)
		if err != nil {
			return nil, err
		}
		defer stop()
		t = l
	}
	opt.Logf("chaos: cluster up (%d nodes, balancer %s, docker %v), seed %d, nemeses %v", len(t.nodes()), t.balancer(), opt.Docker, opt.Seed, opt.Nemeses)

	start := time.Now()
	w := newWorkload(opt, t.balancer(), t.legacyAddr(), t.clientAddrs(), start)
	nem := &nemesis{t: t, kinds: opt.Nemeses, rng: rand.New(rand.NewPCG(opt.Seed, 0xfa17)), start: start, logf: opt.Logf,
		recoverWithin: opt.RecoverWithin, skipHeal: opt.SkipHeal}
	runCtx, stop := context.WithTimeout(ctx, opt.Duration)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.run(runCtx) }()
	go func() { defer wg.Done(); nem.run(runCtx) }()
	wg.Wait()
	stop()
	var interrupted time.Duration
	if ctx.Err() != nil {
		interrupted = time.Since(start)
		opt.Logf("chaos: interrupted after %v; healing, checking the history so far, tearing down", interrupted.Round(time.Second))
	}

	if err := t.healAll(); err != nil {
		return nil, err
	}
	// ctx may have ended early (the operator interrupted the run): the
	// history so far is still worth checking.
	finalWrite := lastWrite(context.WithoutCancel(ctx), t.clientAddrs(), opt.RecoverWithin)
	final, err := finalReads(context.WithoutCancel(ctx), t.clientAddrs(), w)
	if err != nil {
		return nil, err
	}
	ops := w.hist.all()
	rep := &Report{Seed: opt.Seed, Nemeses: opt.Nemeses, Fault: opt.Fault, Duration: opt.Duration, Interrupted: interrupted, Ops: len(ops),
		OpCounts: countOps(ops), Faults: nem.faults, Outages: outages(ops, nem.faults), Load: opt.Load}
	rep.PeakRate, rep.MeanRate = rates(ops, opt.Duration)
	lost, dup := checkCounts(ops, final, w.doubleApply)
	rep.Verdicts = []Verdict{
		checkLinearizable(ops, 2*time.Minute, filepath.Join(opt.ReportDir, "linearizability.html")),
		lost, dup, checkSessions(ops),
		checkProgress(ops, nem.faults, opt, finalWrite),
	}
	if err := writeReport(opt.ReportDir, rep, ops); err != nil {
		return rep, err
	}
	return rep, nil
}

// startLocal starts nodes (each in a network namespace when partitions
// are wanted) and a balancer; stop tears all of it down.
func startLocal(ctx context.Context, opt Options) (*localTarget, func(), error) {
	var net *Net
	if slices.Contains(opt.Nemeses, Partition) {
		var err error
		if net, err = NewNet(opt.Nodes); err != nil {
			return nil, nil, fmt.Errorf("nemesis partition: %w", err)
		}
	}
	closeNet := func() {
		if net != nil {
			net.Close()
		}
	}
	// Every run is a new cluster: data dirs of an earlier run in the same
	// report dir would be refused as another cluster's.
	dir := filepath.Join(opt.ReportDir, "cluster")
	if err := os.RemoveAll(dir); err != nil {
		closeNet()
		return nil, nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	cfg := ClusterConfig{Orderd: filepath.Join(opt.BinDir, "orderd"), Dir: dir, Nodes: opt.Nodes, Net: net}
	if slices.Contains(opt.Nemeses, DiskFull) {
		cfg.DataDirSize = diskFullSize
	}
	if opt.Fault != "" {
		cfg.Env = []string{"ORDERLY_TEST_FAULT=" + opt.Fault}
	}
	c, err := StartCluster(cfg)
	if err != nil {
		closeNet()
		return nil, nil, err
	}
	stop := func() { c.Stop(); closeNet() }
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = c.WaitLeader(wctx)
	cancel()
	if err != nil {
		stop()
		return nil, nil, err
	}
	lb, err := c.StartBalancer(filepath.Join(opt.BinDir, "orderlb"), "--cache-size", "1000")
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &localTarget{c: c, net: net, lb: lb}, stop, nil
}

// startDocker starts a compose project of opt.ComposeFile with opt.Image;
// stop removes its containers, network and volumes.
func startDocker(ctx context.Context, opt Options) (*dockerTarget, func(), error) {
	var env []string
	if opt.Fault != "" {
		env = append(env, "ORDERLY_TEST_FAULT="+opt.Fault)
	}
	c, err := NewCompose(opt.ComposeFile, opt.Image, env...)
	if err != nil {
		return nil, nil, fmt.Errorf("chaos --docker: %w", err)
	}
	if _, err := c.Docker(ctx, "image", "inspect", opt.Image); err != nil {
		return nil, nil, fmt.Errorf("chaos --docker: image %s not found; build it with `make docker`", opt.Image)
	}
	stop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c.Down(dctx) //nolint:errcheck // best effort on teardown
	}
	if err := c.Up(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return &dockerTarget{c: c}, stop, nil
}

// healAll resumes paused nodes, restarts dead ones, heals the network and
// waits for a leader.
func healAll(c *Cluster, net *Net) error {
	for _, n := range c.Nodes {
		if n.Running() {
			n.Signal(syscall.SIGCONT) //nolint:errcheck // may not be paused
		} else if err := c.Start(n); err != nil {
			return err
		}
		if net != nil {
			if err := net.Heal(n.Index); err != nil {
				return err
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.WaitLeader(ctx)
	return err
}

// finalReads reads every customer linearizably once the cluster is whole,
// adds the reads to the history and returns the counts.
func finalReads(ctx context.Context, addrs []string, w *workload) (map[int32]uint64, error) {
	cl, err := client.New(client.Options{Addrs: addrs, RetryTimeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[int32]uint64{}
	for cust := range int32(w.allCustomers()) {
		op := Op{Client: w.clients, Via: "nodes", Kind: OpRead, Consistency: wire.Linearizable, Customer: cust, Call: w.since()}
		r, err := cl.Get(ctx, cust, wire.Linearizable)
		if err != nil {
			return nil, fmt.Errorf("final read of customer %d: %w", cust, err)
		}
		op.Return, op.Outcome = w.since(), OK
		op.Count, op.Last, op.Index = r.OrderCount, r.LastOrder, r.ReadIndex
		w.hist.add(op)
		out[cust] = r.OrderCount
	}
	return out, nil
}

func countOps(ops []Op) map[string]int {
	m := map[string]int{}
	for _, op := range ops {
		k := string(op.Kind)
		if op.Kind == OpRead {
			k = op.Consistency.String() + " read"
		}
		if op.Via == ViaSeed {
			k = "seed-port " + k
		}
		m[k+" "+string(op.Outcome)]++
	}
	return m
}

// outages measures, for each fault, the time from its start to the first
// acknowledged write invoked after it began.
func outages(ops []Op, faults []Fault) map[string]Outage {
	per := map[string][]time.Duration{}
	for _, f := range faults {
		if first := firstAckAfter(ops, f.Start); first >= 0 {
			per[f.Kind] = append(per[f.Kind], first-f.Start)
		}
	}
	out := map[string]Outage{}
	for k, ds := range per {
		slices.Sort(ds)
		out[k] = Outage{Count: len(ds), Median: ds[len(ds)/2], Worst: ds[len(ds)-1]}
	}
	return out
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ErrChecksFailed is returned (wrapped) by callers when a run's checks fail.
var ErrChecksFailed = errors.New("chaos: checks failed")
