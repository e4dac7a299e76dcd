package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"orderly/internal/cli"
	"orderly/loadgen"
	"orderly/wire"
)

// benchCmd is the load generator: the seed's client with better numbers.
func benchCmd(g *cli.Globals) *cobra.Command {
	cfg := loadgen.Config{Progress: os.Stderr}
	var typ, cons, jsonPath, timeline, cpuProfile string
	var first int
	var quiet bool
	cmd := &cobra.Command{
		Use:   "bench --customers C [--orders N | --duration D] [--type regular|custom|mixed] [--reads PCT] ...",
		Short: "load generator: customers placing orders and reading their records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Mix, err = loadgen.ParseMix(typ); err != nil {
				return err
			}
			if cfg.Consistency, err = wire.ParseConsistency(cons); err != nil {
				return fmt.Errorf("--consistency: %w", err)
			}
			// --duration alone runs for that long; with --orders, whichever
			// ends first.
			if cmd.Flags().Changed("duration") && !cmd.Flags().Changed("orders") {
				cfg.Orders = 0
			}
			if cfg.NewCustomers > 0 && !cmd.Flags().Changed("orders") {
				cfg.Orders = 0 // each new customer orders once
			}
			if cfg.Orders == 0 && cfg.Duration == 0 && cfg.NewCustomers == 0 {
				return fmt.Errorf("--orders 0 needs a --duration")
			}
			cfg.Addrs, cfg.FirstCustomer, cfg.RetryTimeout, cfg.TLS = g.Addrs, int32(first), g.Timeout, g.ClientTLS()
			if quiet || g.JSON {
				cfg.Progress = nil
			} else if !isTerminal(os.Stderr) {
				cfg.PlainProgress = true
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return runBench(cmd.Context(), g, cfg, jsonPath, timeline)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Customers, "customers", 8, "concurrent customers")
	f.IntVar(&cfg.Orders, "orders", 50, "operations per customer (0: until --duration); --duration alone means 0")
	f.StringVar(&typ, "type", "regular", "laptop type: regular, custom or mixed")
	f.IntVar(&cfg.ReadPct, "reads", 0, "percentage of operations that read the customer's record")
	f.StringVar(&cons, "consistency", "linearizable", "read level: linearizable, session or stale")
	f.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: when the orders are done)")
	f.IntVar(&cfg.Pipeline, "pipeline", 1, "requests in flight per customer")
	f.IntVar(&cfg.Conns, "conns", 0, "connections the customers share (0: one per customer)")
	f.Float64Var(&cfg.Rate, "rate", 0, "operations per second over all customers (0: as fast as answers come)")
	f.Uint64Var(&cfg.WatchFrom, "watch-from", 0, "index the watchers start at (0: now; an old one measures catching up on a backlog)")
	f.BoolVar(&cfg.Seed, "seed-port", false, "speak the seed's protocol to the first --addr (a balancer's --legacy-listen), one connection per customer, as the seed's client")
	f.StringVar(&cfg.HTTP, "http", "", "send the orders and reads to the first --addr, a side port (--http-addr), through the /v1/ HTTP API: 1.1 (keep-alive, a connection per customer) or 2 (--conns connections)")
	f.IntVar(&cfg.Watchers, "watchers", 0, "watchers of the change feed (every order, from the start) during the run; the result says how many orders reached them")
	f.IntVar(&first, "first-customer", 0, "id of the first customer")
	f.IntVar(&cfg.NewCustomers, "new-customers", 0, "every order is a new customer's first: this many, ids in a random order (the run ends when all are placed); --customers of them at a time")
	f.StringVar(&jsonPath, "json-file", "", "write the result as JSON to this file")
	f.StringVar(&timeline, "timeline", "", "write the per-second timeline as CSV to this file, and a chart next to it (.png)")
	f.BoolVar(&quiet, "quiet", false, "no live progress line")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile (pprof) to this file")
	return cmd
}

func runBench(ctx context.Context, g *cli.Globals, cfg loadgen.Config, jsonPath, timeline string) error {
	// A bench runs as long as it is told to; --timeout bounds each call.
	res, err := loadgen.Run(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return err
	}
	if jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", jsonPath, err)
		}
	}
	if timeline != "" {
		if err := writeTimeline(timeline, res); err != nil {
			return err
		}
	}
	if g.JSON {
		return g.Print(res, "")
	}
	printBench(g, res)
	return nil
}

// isTerminal reports whether f is a character device (a terminal), where
// a live line that rewrites itself makes sense.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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

func printBench(g *cli.Globals, r *loadgen.Result) {
	fmt.Fprintf(g.Out, "%d customers x pipeline %d over %d connection(s), %s orders, %d%% %s reads, against %s\n",
		r.Customers, r.Pipeline, r.Conns, r.Mix, r.ReadPct, r.Consistency, strings.Join(r.Addrs, ","))
	fmt.Fprintf(g.Out, "  %d ops (%d writes, %d reads) in %.2fs: %.0f ops/s\n", r.Ops, r.Writes, r.Reads, r.ElapsedSec, r.Throughput)
	fmt.Fprintf(g.Out, "  errors %d, retries %d, redirects %d\n", r.Errors, r.Retries, r.Redirects)
	if r.Watched > 0 {
		fmt.Fprintf(g.Out, "  watchers received %d orders: %.0f orders/s each\n", r.Watched, r.WatchedPerSec)
	}
	line := func(name string, s loadgen.Summary) {
		if s.Count == 0 {
			return
		}
		fmt.Fprintf(g.Out, "  %-6s latency ms: mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
			name, s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	line("all", r.Latency)
	line("write", r.Write)
	line("read", r.Read)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(g.Out, "  error: %s\n", e)
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
