package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"orderly/client"
	"orderly/loadgen"
	"orderly/wire"
)

// runBench is the load generator: the seed's client with better numbers.
// It makes its own clients (one per customer), so the shared client built
// by main is not used.
func runBench(ctx context.Context, g *globals, _ *client.Client, args []string) error {
	fs := subFlags("bench")
	cfg := loadgen.Config{Addrs: g.addrs, Progress: os.Stderr}
	fs.IntVar(&cfg.Customers, "customers", 8, "concurrent customers")
	fs.IntVar(&cfg.Orders, "orders", 50, "operations per customer (0: until --duration)")
	typ := fs.String("type", "regular", "laptop type: regular, custom or mixed")
	fs.IntVar(&cfg.ReadPct, "reads", 0, "percentage of operations that read the customer's record")
	cons := fs.String("consistency", "linearizable", "read level: linearizable, session or stale")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: when the orders are done)")
	fs.IntVar(&cfg.Pipeline, "pipeline", 1, "requests in flight per customer")
	fs.IntVar(&cfg.Conns, "conns", 0, "connections the customers share (0: one per customer)")
	first := fs.Int("first-customer", 0, "id of the first customer")
	jsonPath := fs.String("json", "", "write the result as JSON to this file")
	timeline := fs.String("timeline", "", "write the per-second timeline as CSV to this file, and a chart next to it (.png)")
	quiet := fs.Bool("quiet", false, "no live progress line")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile (pprof) to this file")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Mix, err = loadgen.ParseMix(*typ); err != nil {
		return err
	}
	if cfg.Consistency, err = wire.ParseConsistency(*cons); err != nil {
		return err
	}
	cfg.FirstCustomer = int32(*first)
	cfg.RetryTimeout = g.timeout
	if *quiet || g.json {
		cfg.Progress = nil
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	// A bench runs as long as it is told to; --timeout bounds each call.
	res, err := loadgen.Run(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return err
	}
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonPath, err)
		}
	}
	if *timeline != "" {
		if err := writeTimeline(*timeline, res); err != nil {
			return err
		}
	}
	if g.json {
		return g.print(res, "")
	}
	printBench(g, res)
	return nil
}

func writeTimeline(path string, res *loadgen.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := loadgen.WriteCSV(f, res.Timeline); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	chart := strings.TrimSuffix(path, filepath.Ext(path)) + ".png"
	title := fmt.Sprintf("orderly: %d customers, %s, %d%% reads", res.Customers, res.Mix, res.ReadPct)
	return loadgen.DrawTimeline(chart, title, res.Timeline, nil)
}

func printBench(g *globals, r *loadgen.Result) {
	fmt.Fprintf(g.out, "%d customers x pipeline %d over %d connection(s), %s orders, %d%% %s reads, against %s\n",
		r.Customers, r.Pipeline, r.Conns, r.Mix, r.ReadPct, r.Consistency, strings.Join(r.Addrs, ","))
	fmt.Fprintf(g.out, "  %d ops (%d writes, %d reads) in %.2fs: %.0f ops/s\n", r.Ops, r.Writes, r.Reads, r.ElapsedSec, r.Throughput)
	fmt.Fprintf(g.out, "  errors %d, retries %d, redirects %d\n", r.Errors, r.Retries, r.Redirects)
	line := func(name string, s loadgen.Summary) {
		if s.Count == 0 {
			return
		}
		fmt.Fprintf(g.out, "  %-6s latency ms: mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
			name, s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	line("all", r.Latency)
	line("write", r.Write)
	line("read", r.Read)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(g.out, "  error: %s\n", e)
	}
}

// startCPUProfile profiles this process until the returned func is called:
// the load generator shares the machine with the cluster, and its cost per
// request is part of every number it reports.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
