// Command move is `make bench-move`: what moving a replica costs under
// load. It seeds a cluster of 4 nodes and 2 shards, 3 replicas each
// (placed on n1-n3 and n2-n4), from a backup holding --customers in
// shard 0 (package bench/seed), measures the write capacity with the
// shard-aware client, then, with writes at half of it, moves shard 0's
// replica from n1 to n4 (client.MoveShard, what `orderctl shards move`
// runs) and reports how long the move took, the client errors, and the
// write p99 before and during it. It writes bench/results/move-latest.json
// and .md, and stops everything it started.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"orderly/bench/seed"
	"orderly/client"
	"orderly/harness"
	"orderly/loadgen"
)

type report struct {
	Customers      int     `json:"customers"` // in the moved shard
	CapacityPerS   float64 `json:"capacity_orders_per_s"`
	RatePerS       float64 `json:"rate_orders_per_s"`
	P99BeforeMs    float64 `json:"p99_before_ms"`
	P99DuringMs    float64 `json:"p99_during_ms"`
	MoveSeconds    float64 `json:"move_seconds"`
	ErrorsDuring   int64   `json:"errors_during"`
	OrdersDuring   int64   `json:"orders_during"`
	SnapshotBytes  int     `json:"snapshot_bytes"`
	SeedSeconds    float64 `json:"seed_seconds"`
	RestoreSeconds float64 `json:"restore_seconds"`
}

func main() {
	bin := flag.String("bin", "bin", "directory with orderd")
	out := flag.String("out", "bench/results", "directory for move-latest.{json,md}")
	customers := flag.Int("customers", 1_000_000, "customers in the shard that moves")
	dur := flag.Duration("duration", 10*time.Second, "length of the capacity and the before runs")
	flag.Parse()
	rep, err := run(*bin, *customers, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-move:", err)
		os.Exit(1)
	}
	if err := write(*out, rep); err != nil {
		fmt.Fprintln(os.Stderr, "bench-move:", err)
		os.Exit(1)
	}
}

func run(bin string, customers int, dur time.Duration) (report, error) {
	rep := report{Customers: customers}
	dir, err := os.MkdirTemp("", "orderly-move")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	bundle := filepath.Join(dir, "seed.bundle")
	states, err := seed.WriteBundle(bundle, []int{customers, 1000})
	if err != nil {
		return rep, fmt.Errorf("seed: %w", err)
	}
	rep.SeedSeconds, rep.SnapshotBytes = time.Since(start).Seconds(), len(states[0].Snapshot)
	fmt.Printf("seeded %d customers in shard 0 (%d bytes of state) in %.1f s\n", customers, rep.SnapshotBytes, rep.SeedSeconds)

	start = time.Now()
	c, err := harness.StartCluster(harness.ClusterConfig{Orderd: filepath.Join(bin, "orderd"), Dir: filepath.Join(dir, "cluster"), Nodes: 4,
		Extra: []string{"--restore", bundle, "--replicas", "3"}})
	if err != nil {
		return rep, err
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := client.New(client.Options{Addrs: c.Addrs(), RetryTimeout: 30 * time.Second})
	if err != nil {
		return rep, err
	}
	defer cl.Close()
	if err := cl.WaitShardLeaders(ctx); err != nil {
		return rep, err
	}
	rep.RestoreSeconds = time.Since(start).Seconds()
	fmt.Printf("restored and led in %.1f s\n", rep.RestoreSeconds)

	// Writes to customers of both shards, straight to their leaders.
	load := loadgen.Config{Addrs: c.Addrs(), Customers: 128, Mix: loadgen.MixRegular, Pipeline: 1, Conns: 16,
		RetryTimeout: 30 * time.Second}
	capRun := load
	capRun.Duration = dur
	res, err := loadgen.Run(ctx, capRun)
	if err != nil {
		return rep, fmt.Errorf("capacity: %w", err)
	}
	rep.CapacityPerS, rep.RatePerS = res.Throughput, res.Throughput/2
	fmt.Printf("capacity %.0f orders/s; the rest at %.0f\n", rep.CapacityPerS, rep.RatePerS)

	half := load
	half.Rate, half.Duration, half.FirstCustomer = rep.RatePerS, dur, 1000
	if res, err = loadgen.Run(ctx, half); err != nil {
		return rep, fmt.Errorf("before the move: %w", err)
	}
	rep.P99BeforeMs = res.Write.P99
	fmt.Printf("before the move: p99 %.2f ms, %d errors\n", rep.P99BeforeMs, res.Errors)

	// During: the same load from the move's start to its end.
	during := half
	during.Duration, during.FirstCustomer = 0, 2000
	during.Orders = 1 << 30
	lctx, stopLoad := context.WithCancel(ctx)
	done := make(chan *loadgen.Result, 1)
	failed := make(chan error, 1)
	go func() {
		r, err := loadgen.Run(lctx, during)
		if err != nil {
			failed <- err
			return
		}
		done <- r
	}()
	time.Sleep(time.Second)
	start = time.Now()
	moveErr := cl.MoveShard(ctx, 0, "n1", "n4", func(s string) { fmt.Println("  move:", s) })
	rep.MoveSeconds = time.Since(start).Seconds()
	stopLoad()
	select {
	case err := <-failed:
		return rep, fmt.Errorf("during the move: %w", err)
	case res = <-done:
	}
	if moveErr != nil {
		return rep, fmt.Errorf("move: %w", moveErr)
	}
	rep.P99DuringMs, rep.ErrorsDuring, rep.OrdersDuring = res.Write.P99, res.Errors, res.Writes
	fmt.Printf("move of %d customers: %.1f s; during it p99 %.2f ms, %d orders, %d errors\n",
		customers, rep.MoveSeconds, rep.P99DuringMs, rep.OrdersDuring, rep.ErrorsDuring)
	return rep, nil
}

func write(out string, rep report) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "move-latest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := fmt.Sprintf(`# make bench-move (%s)

A replica of a shard holding %d customers (%d bytes of state) moved from
n1 to n4 of a 4-node cluster under writes at half of capacity
(%.0f of %.0f orders/s, 128 customers over both shards, straight to the
shards' leaders).

| | |
|---|---:|
| move (add non-voter, catch up, promote, step down, remove) | %.1f s |
| write p99 before the move | %.2f ms |
| write p99 during the move | %.2f ms (%.2fx) |
| orders during the move / client errors | %d / %d |
| seeding the backup / restoring the cluster | %.1f s / %.1f s |
`, time.Now().UTC().Format("2006-01-02 15:04"), rep.Customers, rep.SnapshotBytes, rep.RatePerS, rep.CapacityPerS,
		rep.MoveSeconds, rep.P99BeforeMs, rep.P99DuringMs, rep.P99DuringMs/rep.P99BeforeMs, rep.OrdersDuring, rep.ErrorsDuring,
		rep.SeedSeconds, rep.RestoreSeconds)
	return os.WriteFile(filepath.Join(out, "move-latest.md"), []byte(md), 0o644)
}
