package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"orderly/chaos"
	"orderly/chaos/failpoint"
	"orderly/chaos/traffic"
	"orderly/faults"
	"orderly/internal/cli"
)

// chaosCmd runs a Jepsen-style test against a cluster it starts itself.
// It needs the orderd and orderlb binaries next to ordertest (or --bin).
func chaosCmd(g *cli.Globals) *cobra.Command {
	var o chaos.Options
	var nem, cpuProfile string
	self, _ := os.Executable()
	cmd := &cobra.Command{
		Use:   "chaos [--duration D] [--seed N] [--nemesis a,b|all] [--load normal|high|mixed] [--report DIR]",
		Short: "fault injection with a linearizability checker, against a cluster it starts",
		Args:  cobra.NoArgs,
		// It starts its own cluster and makes its certificates: nothing
		// to look up.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			o.Insecure = g.Insecure
			if o.Nemeses, err = failpoint.ParseNemeses(nem); err != nil {
				return err
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return runChaos(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.BinDir, "bin", filepath.Dir(self), "directory holding orderd and orderlb")
	f.StringVar(&o.ReportDir, "report", "chaos-report", "directory for the summary, chart, history (and porcupine's HTML on a failure)")
	f.DurationVar(&o.Duration, "duration", 2*time.Minute, "length of the workload under faults")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the fault schedule and workload (0: random, printed)")
	f.StringVar(&nem, "nemesis", "all", "faults, comma-separated, or all: "+strings.Join(failpoint.AllNemeses, ", ")+
		"; on a sharded cluster also "+strings.Join(failpoint.ShardNemeses, ", "))
	f.StringVar(&o.Load, "load", traffic.LoadNormal, "workload: normal (~1,000 ops/s), high (256 more clients back to back) or mixed (high in the middle half)")
	f.IntVar(&o.Nodes, "nodes", 3, "cluster size")
	f.IntVar(&o.Shards, "shards", 0, "shards of the cluster (orderd --shards; 0: one group)")
	f.IntVar(&o.Replicas, "replicas", 0, "replicas of each shard (orderd --replicas; below --nodes for the move nemesis)")
	f.IntVar(&o.Clients, "clients", 6, "concurrent clients (half through the balancer)")
	f.IntVar(&o.Customers, "customers", 4, "customers the clients contend on")
	f.IntVar(&o.HighClients, "high-clients", 256, "clients added under high load (16 share a connection set)")
	f.BoolVar(&o.Docker, "docker", false, "drive the Docker compose cluster (deploy/compose.yaml, image from make docker) instead of local processes")
	f.StringVar(&o.ComposeFile, "compose-file", filepath.Join("deploy", "compose.yaml"), "compose file for --docker")
	f.StringVar(&o.Image, "image", "orderly:dev", "image for --docker")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the workload's own CPU profile (pprof) to this file")
	return cmd
}

func runChaos(ctx context.Context, g *cli.Globals, o chaos.Options) error {
	if o.Seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		o.Seed = binary.BigEndian.Uint64(b[:]) >> 1
	}
	fmt.Fprintf(os.Stderr, "chaos: seed %d (replay with --seed %d)\n", o.Seed, o.Seed)
	// Ctrl-C or SIGTERM ends the workload early; the run still heals its
	// faults, checks the history so far, writes the report and tears the
	// cluster (processes, network namespaces) down. A second one kills.
	runCtx, stopSignals := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-runCtx.Done()
		stopSignals()
	}()
	// Test-only: break every node on purpose; the checks must then fail.
	o.Fault = os.Getenv(faults.EnvVar)
	o.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	rep, err := chaos.Run(runCtx, o)
	if err != nil {
		return err
	}
	if g.JSON {
		if err := g.Print(rep, ""); err != nil {
			return err
		}
	} else {
		fmt.Fprint(g.Out, rep.Markdown())
		fmt.Fprintf(g.Out, "\nreport: %s\n", o.ReportDir)
	}
	if !rep.Pass() {
		return fmt.Errorf("%w (see %s/summary.md)", chaos.ErrChecksFailed, o.ReportDir)
	}
	return nil
}
