package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"orderly/chaos/failpoint"
	"orderly/chaos/model"
	"orderly/chaos/report"
	"orderly/chaos/traffic"
	"orderly/chaos/validate"
	"orderly/client"
	"orderly/faults"
	"orderly/harness"
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
	// Shards and Replicas make a sharded cluster (orderd --shards,
	// --replicas; 0: one group), for the move and balance nemeses.
	Shards, Replicas int
	Clients          int // default 6: half through the balancer, half to the nodes
	Customers        int // default 4: few, so that clients contend
	// Load is the workload's profile: traffic.LoadNormal (default), traffic.LoadHigh, or
	// traffic.LoadMixed (high load in the middle half of the run).
	Load string
	// HighClients run back to back, without pauses, while the load is
	// high, on customers of their own (default 256 clients on 256 customers).
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
	// Insecure runs the local cluster plaintext (--insecure); by default
	// every port but the seed's is mutual TLS, as in production.
	Insecure bool
	Logf     func(format string, args ...any)
}

// Run starts a cluster and a balancer in ReportDir, runs the workload
// under the nemeses for Duration, heals everything, reads every customer's
// final record, and checks the history. It stops everything it started.
func Run(ctx context.Context, opt Options) (*report.Report, error) {
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
		opt.HighClients = 256
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
		opt.Load = traffic.LoadNormal
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"nodes", opt.Nodes}, {"clients", opt.Clients}, {"customers", opt.Customers},
		{"high clients", opt.HighClients}, {"high customers", opt.HighCustomers}} {
		if c.n < 1 {
			return nil, fmt.Errorf("%s %d: need at least 1", c.name, c.n)
		}
	}
	if !slices.Contains([]string{traffic.LoadNormal, traffic.LoadHigh, traffic.LoadMixed}, opt.Load) {
		return nil, fmt.Errorf("load %q: want %s, %s or %s", opt.Load, traffic.LoadNormal, traffic.LoadHigh, traffic.LoadMixed)
	}
	if opt.Docker {
		for _, k := range opt.Nemeses {
			if slices.Contains(failpoint.LocalOnly, k) {
				return nil, fmt.Errorf("nemesis %s: %w", k, failpoint.ErrNotInDocker)
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
	var t failpoint.Target
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
	opt.Logf("chaos: cluster up (%d nodes, balancer %s, docker %v), seed %d, nemeses %v", len(t.Nodes()), t.Balancer(), opt.Docker, opt.Seed, opt.Nemeses)

	start := time.Now()
	w := traffic.New(traffic.Config{Clients: opt.Clients, Customers: opt.Customers, HighClients: opt.HighClients,
		HighCustomers: opt.HighCustomers, Load: opt.Load, Duration: opt.Duration, Seed: opt.Seed,
		LBAddr: t.Balancer(), LegacyAddr: t.LegacyAddr(), NodeAddrs: t.ClientAddrs(), Start: start, TLS: t.TLS()})
	nem := failpoint.New(t, failpoint.Config{Kinds: opt.Nemeses, Seed: opt.Seed, Start: start, Logf: opt.Logf,
		RecoverWithin: opt.RecoverWithin, SkipHeal: opt.SkipHeal})
	runCtx, stop := context.WithTimeout(ctx, opt.Duration)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(runCtx) }()
	go func() { defer wg.Done(); nem.Run(runCtx) }()
	wg.Wait()
	stop()
	var interrupted time.Duration
	if ctx.Err() != nil {
		interrupted = time.Since(start)
		opt.Logf("chaos: interrupted after %v; healing, checking the history so far, tearing down", interrupted.Round(time.Second))
	}

	if err := t.HealAll(); err != nil {
		return nil, err
	}
	// ctx may have ended early (the operator interrupted the run): the
	// history so far is still worth checking.
	finalWrite := lastWrite(context.WithoutCancel(ctx), t.ClientAddrs(), t.TLS(), opt.RecoverWithin)
	// A final read that fails (a shard with no leader) fails progress,
	// and the counts of the customers left unread, but the report is
	// still written: it is what says why.
	final, finalErr := finalReads(context.WithoutCancel(ctx), t.ClientAddrs(), t.TLS(), w)
	ops, faults := w.Ops(), nem.Faults()
	rep := &report.Report{Seed: opt.Seed, Nemeses: opt.Nemeses, Fault: opt.Fault, Duration: opt.Duration, Interrupted: interrupted, Ops: len(ops),
		OpCounts: report.CountOps(ops), Faults: faults, Outages: report.Outages(ops, faults), Load: opt.Load}
	rep.PeakRate, rep.MeanRate = report.Rates(ops, opt.Duration)
	lost, failedApplied, dup := validate.Counts(ops, final, w.DoubleApply(), faults)
	rep.Verdicts = []validate.Verdict{
		validate.Linearizable(ops, 10*time.Minute, filepath.Join(opt.ReportDir, "linearizability.html")),
		lost, failedApplied, dup, validate.Sessions(ops),
		validate.Progress(ops, faults, validate.Bounds{MinOrders: opt.MinOrders, MinReads: opt.MinReads, RecoverWithin: opt.RecoverWithin},
			errors.Join(finalWrite, finalErr)),
	}
	if err := report.Write(opt.ReportDir, rep, ops); err != nil {
		return rep, err
	}
	return rep, nil
}

// startLocal starts nodes (each in a network namespace when partitions
// are wanted) and a balancer; stop tears all of it down.
func startLocal(ctx context.Context, opt Options) (failpoint.Target, func(), error) {
	var net *harness.Net
	if slices.Contains(opt.Nemeses, failpoint.Partition) {
		var err error
		if net, err = harness.NewNet(opt.Nodes); err != nil {
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
	cfg := harness.ClusterConfig{Orderd: filepath.Join(opt.BinDir, "orderd"), Dir: dir, Nodes: opt.Nodes, Net: net}
	if !opt.Insecure {
		hosts := []string{"127.0.0.1"}
		for i := 1; net != nil && i <= opt.Nodes; i++ {
			hosts = append(hosts, net.IP(i))
		}
		certs, err := harness.NewCerts(filepath.Join(dir, "certs"), hosts...)
		if err != nil {
			closeNet()
			return nil, nil, err
		}
		cfg.Certs = certs
	}
	if slices.Contains(opt.Nemeses, failpoint.DiskFull) {
		cfg.DataDirSize = diskFullSize
		cfg.Extra = append(cfg.Extra, "--min-free", diskAlarmFree)
	}
	if opt.Fault != "" {
		cfg.Env = []string{faults.EnvVar + "=" + opt.Fault}
	}
	if opt.Shards > 0 {
		cfg.Extra = append(cfg.Extra, "--shards", strconv.Itoa(opt.Shards))
		if opt.Replicas > 0 {
			cfg.Extra = append(cfg.Extra, "--replicas", strconv.Itoa(opt.Replicas))
		}
	}
	c, err := harness.StartCluster(cfg)
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
	return failpoint.Local(c, net, lb), stop, nil
}

// startDocker starts a compose project of opt.ComposeFile with opt.Image;
// stop removes its containers, network and volumes.
func startDocker(ctx context.Context, opt Options) (failpoint.Target, func(), error) {
	var env []string
	if opt.Fault != "" {
		env = append(env, faults.EnvVar+"="+opt.Fault)
	}
	c, err := harness.NewCompose(opt.ComposeFile, opt.Image, env...)
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
	certDir := filepath.Join(opt.ReportDir, "compose-certs")
	if err := os.RemoveAll(certDir); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := c.Up(ctx, certDir); err != nil {
		stop()
		return nil, nil, err
	}
	return failpoint.Docker(c), stop, nil
}

// finalReader is the client id of the final reads in the history; no
// workload client has it.
const finalReader = 1 << 20

// finalReads reads every customer linearizably once the cluster is whole,
// adds the reads to the history and returns the counts: up to the first
// read that fails, with its error.
func finalReads(ctx context.Context, addrs []string, tls func(string) *tls.Config, w *traffic.Workload) (map[int32]uint64, error) {
	cl, err := client.New(client.Options{Addrs: addrs, RetryTimeout: 30 * time.Second, DialTimeout: 30 * time.Second, TLS: tls})
	if err != nil {
		return map[int32]uint64{}, fmt.Errorf("final reads: %w", err)
	}
	defer cl.Close()
	out := map[int32]uint64{}
	for cust := range int32(w.AllCustomers()) {
		op := model.Op{Client: finalReader, Via: model.ViaNodes, Kind: model.OpRead, Consistency: wire.Linearizable, Customer: cust, Call: w.Since()}
		r, err := cl.Get(ctx, cust, wire.Linearizable)
		if err != nil {
			return out, fmt.Errorf("final read of customer %d: %w", cust, err)
		}
		op.Return, op.Outcome = w.Since(), model.OK
		op.Count, op.Last, op.Index = r.OrderCount, r.LastOrder, r.ReadIndex
		w.Record(op)
		out[cust] = r.OrderCount
	}
	return out, nil
}

// ErrChecksFailed is returned (wrapped) by callers when a run's checks fail.
var ErrChecksFailed = errors.New("chaos: checks failed")
