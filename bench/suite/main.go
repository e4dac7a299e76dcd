// Command suite is `make bench`: it starts a local 3-node cluster and a
// balancer in a temporary directory, runs the standard load scenarios
// with the loadgen package, and writes bench/results/<date>-<host>.md
// with the JSON of every run and a timeline chart of each. It stops
// everything it started.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"orderly/harness"
	"orderly/loadgen"
	"orderly/wire"
)

// scenario is one loadgen run against one target.
type scenario struct {
	Name    string
	TLS     bool   // on a mutual TLS cluster
	Metrics bool   // side ports scraped every second
	Target  string // leader (direct to the nodes) or balancer
	Experts int    // cluster to run on: its --experts
	Shards  int    // and its --shards (0: one)
	Config  loadgen.Config
	Etcd    string // the etcd run it is compared with (bench/etcd: op-clients), if any
}

func main() {
	binDir := flag.String("bin", "bin", "directory with orderd and orderlb")
	out := flag.String("out", "bench/results", "directory for the report")
	dur := flag.Duration("duration", 10*time.Second, "length of each run")
	only := flag.String("only", "", "run only scenarios whose name contains this")
	etcd := flag.String("etcd", "", "directory of etcd driver results: run only the scenarios etcd has, and compare")
	tlsMode := flag.String("tls", "on", "on: mutual TLS as in production; off: --insecure; both: every scenario on a TLS cluster, then at once on a plaintext one")
	metricsMode := flag.String("metrics", "off", "on: every process's side port (--http-addr, always on) is scraped every second, as Prometheus would; off: not scraped; both: each scenario with, then at once without")
	etcdLabel := flag.String("etcd-label", "", "the etcd version and round, for the comparison's heading")
	repeat := flag.Int("repeat", 1, "run each scenario's variants this many times, alternating, and report the median of each (for A/B comparisons on a noisy machine)")
	flag.Parse()
	if *repeat < 1 {
		fmt.Fprintln(os.Stderr, "bench: --repeat must be at least 1")
		os.Exit(2)
	}
	for _, m := range []struct{ flag, v string }{{"--tls", *tlsMode}, {"--metrics", *metricsMode}} {
		if m.v != "on" && m.v != "off" && m.v != "both" {
			fmt.Fprintf(os.Stderr, "bench: %s: want on, off or both\n", m.flag)
			os.Exit(2)
		}
	}
	if err := run(*binDir, *out, *dur, *only, *etcd, *etcdLabel, *tlsMode, *metricsMode, *repeat); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// conns is how many connections a scenario's customers share: the
// bench/etcd driver's default, so both systems get the same connections.
const conns = 16

func scenarios(d time.Duration) []scenario {
	w := func(c int, target string) scenario {
		return scenario{Name: fmt.Sprintf("writes c=%d via %s", c, target), Target: target, Experts: 4, Etcd: fmt.Sprintf("put-%d", c),
			Config: loadgen.Config{Customers: c, Duration: d, Mix: loadgen.MixRegular, Pipeline: 1, Conns: conns}}
	}
	r := func(c int, cons wire.Consistency) scenario {
		etcd := map[wire.Consistency]string{wire.Linearizable: "get", wire.Stale: "get-serializable"}[cons]
		if etcd != "" {
			etcd = fmt.Sprintf("%s-%d", etcd, c)
		}
		name := fmt.Sprintf("%s reads c=%d via balancer", cons, c)
		if cons != wire.Session {
			name += " (cache)"
		}
		return scenario{Name: name, Target: "balancer", Experts: 4, Etcd: etcd,
			Config: loadgen.Config{Customers: c, Duration: d, Mix: loadgen.MixRegular, ReadPct: 100, Consistency: cons, Pipeline: 1, Conns: conns}}
	}
	// The seed's client: one plaintext connection per customer to the
	// balancer's seed port, one request in flight (issue 15 item 6).
	seed := func(c, reads int, etcd string) scenario {
		what := "writes"
		if reads > 0 {
			what = "linearizable reads"
		}
		return scenario{Name: fmt.Sprintf("%s c=%d via seed port (a connection per customer)", what, c), Target: "seed port", Experts: 4, Etcd: etcd,
			Config: loadgen.Config{Customers: c, Duration: d, Mix: loadgen.MixRegular, ReadPct: reads, Pipeline: 1, Seed: true}}
	}
	// A million customers the cluster has not seen, in random id order
	// (issue 15 item 5): against "writes c=256 via leader", whose orders
	// are for 256 existing customers. The state it leaves is what the
	// snapshot and restore rows measure (stateRows).
	fresh := scenario{Name: fmt.Sprintf("new customers in random order c=256 via leader (%d)", newCustomers), Target: "leader", Experts: 4,
		Config: loadgen.Config{Customers: 256, NewCustomers: newCustomers, Duration: 5 * time.Minute, Mix: loadgen.MixRegular, Pipeline: 1, Conns: conns}}
	// The HTTP API: the same orders as "writes c=64 via balancer", as JSON
	// over HTTP/1.1 keep-alive (a connection per customer) and over HTTP/2
	// (the customers share 16 connections, as the binary rows do), to the
	// balancer's side port; beside them the binary protocol with a
	// connection per customer, as HTTP/1.1 has.
	api := func(c int, version string) scenario {
		return scenario{Name: fmt.Sprintf("writes c=%d via balancer HTTP/%s API", c, version), Target: "balancer http", Experts: 4,
			Config: loadgen.Config{Customers: c, Duration: d, Mix: loadgen.MixRegular, Pipeline: 1, HTTP: version, Conns: conns}}
	}
	ownConn := scenario{Name: "writes c=64 via balancer (a connection per customer)", Target: "balancer", Experts: 4,
		Config: loadgen.Config{Customers: 64, Duration: d, Mix: loadgen.MixRegular, Pipeline: 1}}
	// A cluster of three shards on the same three nodes (docs/shards.md):
	// one box pays for each group's entries and fsyncs, so these rows
	// show the cost of sharding where it cannot pay (bench/scale shows
	// where it does).
	sharded := func(c int, target string) scenario {
		sc := w(c, target)
		sc.Name += ", 3 shards"
		sc.Shards = 3
		return sc
	}
	custom := func(experts int) scenario {
		return scenario{Name: fmt.Sprintf("custom orders c=64 experts=%d via balancer", experts), Target: "balancer", Experts: experts,
			Config: loadgen.Config{Customers: 64, Duration: d, Mix: loadgen.MixCustom, Pipeline: 1, Conns: conns}}
	}
	return []scenario{
		w(1, "leader"), w(16, "leader"), w(64, "leader"), w(256, "leader"),
		w(1, "balancer"), w(16, "balancer"), w(64, "balancer"), w(256, "balancer"),
		r(16, wire.Linearizable), r(256, wire.Linearizable),
		r(64, wire.Session), r(256, wire.Stale),
		seed(64, 0, "put-64"), seed(256, 100, "get-256"),
		ownConn, api(64, loadgen.HTTP1), api(64, loadgen.HTTP2),
		sharded(256, "leader"), sharded(256, "balancer"),
		custom(2), custom(8),
		fresh,
	}
}

// newCustomers is how many the new-customers scenario places.
const newCustomers = 1_000_000

// env is a running cluster with its balancer.
type env struct {
	c          *harness.Cluster
	certs      *harness.Certs // nil: plaintext
	lb         *harness.Balancer
	stopScrape func()
}

func (e *env) stop() {
	if e.stopScrape != nil {
		e.stopScrape()
	}
	e.c.Stop()
}

func start(binDir, dir string, experts, shards int, secure, metrics bool) (*env, error) {
	// Side ports are always on (the HTTP API scenarios need the
	// balancer's); metrics decides whether they are scraped.
	cfg := harness.ClusterConfig{Orderd: filepath.Join(binDir, "orderd"), Dir: dir, Experts: experts, HTTP: true}
	if shards > 1 {
		cfg.Extra = []string{"--shards", strconv.Itoa(shards)}
	}
	if secure {
		certs, err := harness.NewCerts(filepath.Join(dir, "certs"), "127.0.0.1")
		if err != nil {
			return nil, err
		}
		cfg.Certs = certs
	}
	c, err := harness.StartCluster(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	lb, err := c.StartBalancer(filepath.Join(binDir, "orderlb"), "--cache-size", "100000")
	if err != nil {
		c.Stop()
		return nil, err
	}
	e := &env{c: c, lb: lb, certs: cfg.Certs}
	if err := e.warmUp(); err != nil {
		e.stop()
		return nil, err
	}
	if metrics {
		e.stopScrape = scrape(c, lb)
	}
	return e, nil
}

// warmUp runs a second of writes at 16 clients on the nodes and one
// through the balancer, not reported: the first run on a just-started
// cluster measured its start (connections, the log's first segment, the
// runtime's heap), not the cluster. bench/etcd/run.sh gives etcd the same.
func (e *env) warmUp() error {
	for _, addrs := range [][]string{e.c.Addrs(), {e.lb.Addr}} {
		cfg := loadgen.Config{Customers: 16, Conns: conns, Duration: time.Second, Mix: loadgen.MixRegular, Pipeline: 1,
			Addrs: addrs, TLS: e.c.ClientTLS()}
		if _, err := loadgen.Run(context.Background(), cfg); err != nil {
			return fmt.Errorf("warm-up on %v: %w", addrs, err)
		}
	}
	return nil
}

// scrape reads every process's /metrics once a second, as Prometheus
// would, until the returned func is called.
func scrape(c *harness.Cluster, lb *harness.Balancer) func() {
	addrs := []string{lb.HTTPAddr}
	for _, n := range c.Nodes {
		addrs = append(addrs, n.HTTPAddr)
	}
	transport := &http.Transport{}
	scheme := "http://"
	if f := c.ClientTLS(); f != nil {
		transport.TLSClientConfig, scheme = f("127.0.0.1"), "https://"
	}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: transport}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			for _, a := range addrs {
				if resp, err := cl.Get(scheme + a + "/metrics"); err == nil {
					io.Copy(io.Discard, resp.Body) //nolint:errcheck // the cost is the point, not the body
					resp.Body.Close()
				}
			}
		}
	}()
	return func() { close(done); <-stopped; transport.CloseIdleConnections() }
}

// mode is one side of an A/B comparison: on or off, and the name suffix
// that tells the rows apart.
type mode struct {
	on     bool
	suffix string
}

func modes(flag, with, without string) []mode {
	switch flag {
	case "on":
		return []mode{{true, ""}}
	case "off":
		return []mode{{false, ""}}
	}
	return []mode{{true, " [" + with + "]"}, {false, " [" + without + "]"}}
}

// variants gives every scenario its TLS and metrics modes; "both" runs it
// once with and at once without, so that a pair sees the same hour of a
// noisy machine; with repeat > 1 the pairs run that many times in turn,
// named "... #k".
func variants(ss []scenario, tlsMode, metricsMode string, repeat int) []scenario {
	var out []scenario
	for _, s := range ss {
		for k := 1; k <= repeat; k++ {
			for _, t := range modes(tlsMode, "tls", "plaintext") {
				for _, m := range modes(metricsMode, "metrics", "no metrics") {
					v := s
					v.TLS, v.Metrics, v.Name = t.on, m.on, s.Name+t.suffix+m.suffix
					if repeat > 1 {
						v.Name += fmt.Sprintf(" #%d", k)
					}
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// medians reports the median throughput of each variant run several
// times, and what metrics cost when both modes ran.
func medians(ss []scenario, rs []*loadgen.Result) string {
	by := map[string][]float64{}
	var names []string
	for i, s := range ss {
		name, _, _ := strings.Cut(s.Name, " #")
		if by[name] == nil {
			names = append(names, name)
		}
		by[name] = append(by[name], rs[i].Throughput)
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	var b strings.Builder
	b.WriteString("\n## Medians\n\n| variant | runs | median ops/s | cost of metrics |\n|---|---:|---:|---:|\n")
	for _, n := range names {
		cost := ""
		if base, ok := strings.CutSuffix(n, " [metrics]"); ok && by[base+" [no metrics]"] != nil {
			cost = fmt.Sprintf("%.1f%%", 100*(1-median(by[n])/median(by[base+" [no metrics]"])))
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s |\n", n, len(by[n]), median(by[n]), cost)
	}
	return b.String()
}

func run(binDir, out string, d time.Duration, only, etcdDir, etcdLabel, tlsMode, metricsMode string, repeat int) error {
	tmp, err := os.MkdirTemp("", "orderly-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	host, _ := os.Hostname()
	stamp := time.Now().UTC().Format("2006-01-02T1504")
	base := filepath.Join(out, stamp+"-"+host)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	type envKey struct {
		experts, shards int
		tls, metrics    bool
	}
	envs := map[envKey]*env{}
	defer func() {
		for _, e := range envs {
			e.stop()
		}
	}()
	var results []*loadgen.Result
	var ran []scenario
	var state string // stateRows of the new-customers scenario
	for i, s := range variants(scenarios(d), tlsMode, metricsMode, repeat) {
		if (only != "" && !strings.Contains(s.Name, only)) || (etcdDir != "" && s.Etcd == "") {
			continue
		}
		key := envKey{s.Experts, s.Shards, s.TLS, s.Metrics}
		e := envs[key]
		if e == nil {
			dir := filepath.Join(tmp, fmt.Sprintf("experts%d-shards%d-tls%v-metrics%v", s.Experts, s.Shards, s.TLS, s.Metrics))
			if e, err = start(binDir, dir, s.Experts, s.Shards, s.TLS, s.Metrics); err != nil {
				return fmt.Errorf("start cluster: %w", err)
			}
			envs[key] = e
		}
		s.Config.Addrs, s.Config.TLS = e.c.Addrs(), e.c.ClientTLS()
		switch s.Target {
		case "balancer":
			s.Config.Addrs = []string{e.lb.Addr}
		case "seed port":
			s.Config.Addrs = []string{e.lb.LegacyAddr}
		case "balancer http":
			s.Config.Addrs = []string{e.lb.HTTPAddr}
		}
		if s.Config.ReadPct > 0 {
			// Reads need records: the write scenarios made customers 0-255.
			s.Config.FirstCustomer = 0
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.Name)
		s.Config.Progress = os.Stderr
		res, err := loadgen.Run(context.Background(), s.Config)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		slug := fmt.Sprintf("%02d-%s", i, strings.NewReplacer(" ", "-", "=", "", "/", "").Replace(s.Name))
		if err := writeJSON(filepath.Join(base, slug+".json"), res); err != nil {
			return err
		}
		if err := loadgen.DrawTimeline(filepath.Join(base, slug+".png"), "orderly: "+s.Name, res.Timeline, nil); err != nil {
			return err
		}
		results = append(results, res)
		ran = append(ran, s)
		if s.Config.NewCustomers > 0 {
			rows, err := stateRows(binDir, filepath.Join(tmp, fmt.Sprintf("restore-%d", i)), e, s.Experts)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			state += rows
		}
	}
	md := report(stamp, host, d, ran, results) + scaling(ran, results) + state
	if repeat > 1 {
		md += medians(ran, results)
	}
	if etcdDir != "" {
		cmp, err := compare(etcdDir, etcdLabel, ran, results)
		if err != nil {
			return err
		}
		md += cmp
	}
	path := base + ".md"
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (runs in %s/)\n", path, base)
	fmt.Print(md)
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func report(stamp, host string, d time.Duration, ss []scenario, rs []*loadgen.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# orderly bench %s on %s\n\n", stamp, host)
	fmt.Fprintf(&b, "`make bench`: 3 orderd (fsync on) + orderlb + load on one machine, %d CPUs, %s, %v per run; "+
		"each run's customers share up to %d connections (`ordertest bench --conns %d`), as bench/etcd's clients share %d. "+
		"Mutual TLS (1.3) on every port unless a row says plaintext.\n\n",
		runtime.NumCPU(), runtime.Version(), d, conns, conns, conns)
	b.WriteString("| scenario | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | retries |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, r := range rs {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %d |\n", ss[i].Name, r.Throughput,
			r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.Errors, r.Retries)
	}
	return b.String()
}

// etcdResult is what bench/etcd writes per run.
type etcdResult struct {
	Throughput float64         `json:"ops_per_s"`
	Errors     int64           `json:"errors"`
	Latency    loadgen.Summary `json:"latency"`
}

// compare puts each orderly scenario next to its etcd counterpart.
func compare(dir, label string, ss []scenario, rs []*loadgen.Result) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## orderly vs etcd (same machine, same load shapes, fsync on; %s)\n\n", label)
	b.WriteString("etcd's puts go to its leader only, as orderly's \"via leader\" rows do; its gets are spread over the members. " +
		"The balancer rows marked *cache* are answered from the balancer's cache: linearizable ones behind a read index " +
		"from the leader and the change feed (nothing stale), stale ones from whatever it holds. etcd has no such cache: " +
		"its serializable gets (any member's local state, possibly stale) are the closest, and its linearizable gets pay a " +
		"read index round on every member.\n\n")
	b.WriteString("| scenario | etcd run | orderly ops/s | etcd ops/s | ratio | orderly p99 ms | etcd p99 ms |\n|---|---|---:|---:|---:|---:|---:|\n")
	for i, s := range ss {
		raw, err := os.ReadFile(filepath.Join(dir, s.Etcd+".json"))
		if err != nil {
			return "", fmt.Errorf("etcd result for %s: %w", s.Name, err)
		}
		var e etcdResult
		if err := json.Unmarshal(raw, &e); err != nil {
			return "", fmt.Errorf("etcd result %s: %w", s.Etcd, err)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.2fx | %.2f | %.2f |\n", s.Name, s.Etcd, rs[i].Throughput, e.Throughput,
			rs[i].Throughput/e.Throughput, rs[i].Latency.P99, e.Latency.P99)
	}
	return b.String(), nil
}
