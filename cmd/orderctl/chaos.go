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

	"orderly/chaos"
	"orderly/chaos/failpoint"
	"orderly/chaos/traffic"
	"orderly/client"
	"orderly/faults"
)

// runChaos runs a Jepsen-style test against a cluster it starts itself.
// It needs the orderd and orderlb binaries next to orderctl (or --bin).
func runChaos(ctx context.Context, g *globals, _ *client.Client, args []string) error {
	fs := subFlags("chaos")
	self, _ := os.Executable()
	binDir := fs.String("bin", filepath.Dir(self), "directory holding orderd and orderlb")
	report := fs.String("report", "chaos-report", "directory for the summary, chart, history (and porcupine's HTML on a failure)")
	dur := fs.Duration("duration", 2*time.Minute, "length of the workload under faults")
	seed := fs.Uint64("seed", 0, "seed of the fault schedule and workload (0: random, printed)")
	nem := fs.String("nemesis", "all", "faults, comma-separated, or all: "+strings.Join(failpoint.AllNemeses, ", "))
	load := fs.String("load", traffic.LoadNormal, "workload: normal (~1,000 ops/s), high (48 more clients back to back) or mixed (high in the middle half)")
	nodes := fs.Int("nodes", 3, "cluster size")
	clients := fs.Int("clients", 6, "concurrent clients (half through the balancer)")
	customers := fs.Int("customers", 4, "customers the clients contend on")
	docker := fs.Bool("docker", false, "drive the Docker compose cluster (deploy/compose.yaml, image from make docker) instead of local processes")
	composeFile := fs.String("compose-file", filepath.Join("deploy", "compose.yaml"), "compose file for --docker")
	image := fs.String("image", "orderly:dev", "image for --docker")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	kinds, err := failpoint.ParseNemeses(*nem)
	if err != nil {
		return err
	}
	if *seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		*seed = binary.BigEndian.Uint64(b[:]) >> 1
	}
	fmt.Fprintf(os.Stderr, "chaos: seed %d (replay with --seed %d)\n", *seed, *seed)
	// Ctrl-C or SIGTERM ends the workload early; the run still heals its
	// faults, checks the history so far, writes the report and tears the
	// cluster (processes, network namespaces) down. A second one kills.
	runCtx, stopSignals := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-runCtx.Done()
		stopSignals()
	}()
	rep, err := chaos.Run(runCtx, chaos.Options{BinDir: *binDir, ReportDir: *report, Duration: *dur,
		Seed: *seed, Nemeses: kinds, Load: *load, Nodes: *nodes, Clients: *clients, Customers: *customers,
		// Test-only: break every node on purpose; the checks must then fail.
		Fault:  os.Getenv(faults.EnvVar),
		Docker: *docker, ComposeFile: *composeFile, Image: *image,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	if g.json {
		if err := g.print(rep, ""); err != nil {
			return err
		}
	} else {
		fmt.Fprint(g.out, rep.Markdown())
		fmt.Fprintf(g.out, "\nreport: %s\n", *report)
	}
	if !rep.Pass() {
		return fmt.Errorf("%w (see %s/summary.md)", chaos.ErrChecksFailed, *report)
	}
	return nil
}
