// Command scale is `make bench-scale`: capacity as machines are added. It
// runs clusters of 3, 6 and 9 nodes holding as many shards (3 replicas
// each), every node held to the same CPU quota in a cgroup of its own
// (Docker's --cpus is the same thing), and drives writes straight to the
// shards' leaders with the shard-aware client, so that routing is not the
// bound. It writes bench/results/scale-latest.json, a table and a chart.
// It stops everything it started and removes its cgroups.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"orderly/client"
	"orderly/harness"
	"orderly/loadgen"
)

// point is one cluster size's result.
type point struct {
	Nodes      int     `json:"nodes"`
	Shards     int     `json:"shards"`
	OrdersPerS float64 `json:"orders_per_s"`
	P99Ms      float64 `json:"p99_ms"`
}

type report struct {
	QuotaCPUs float64 `json:"quota_cpus"`
	Points    []point `json:"points"`
}

func main() {
	bin := flag.String("bin", "bin", "directory with orderd")
	out := flag.String("out", "bench/results", "directory for scale-latest.{json,md,png}")
	quota := flag.Float64("quota", 0.1, "CPUs each node may use (its cgroup's quota)")
	dur := flag.Duration("duration", 10*time.Second, "length of each run")
	sizes := flag.String("nodes", "3,6,9", "cluster sizes, each with as many shards")
	perNode := flag.Int("customers-per-node", 32, "concurrent customers per node")
	same := flag.Int("same-box", 0, "instead: this many rounds of 3 nodes with no quota, one shard against 3, 256 clients through a balancer, interleaved")
	flag.Parse()
	if *same > 0 {
		if err := sameBox(*bin, *dur, *same); err != nil {
			fmt.Fprintln(os.Stderr, "bench-scale:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *out, *quota, *dur, *sizes, *perNode); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

func run(bin, out string, quota float64, dur time.Duration, sizes string, perNode int) error {
	rep := report{QuotaCPUs: quota}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 {
			return fmt.Errorf("--nodes %q: want sizes of 3 or more", sizes)
		}
		p, err := measure(bin, n, quota, dur, perNode)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		fmt.Printf("%d nodes, %d shards: %.0f orders/s, p99 %.2f ms\n", p.Nodes, p.Shards, p.OrdersPerS, p.P99Ms)
		rep.Points = append(rep.Points, p)
	}
	return write(out, rep)
}

// measure runs one cluster of n nodes and n shards under quota.
func measure(bin string, n int, quota float64, dur time.Duration, perNode int) (point, error) {
	dir, err := os.MkdirTemp("", "orderly-scale")
	if err != nil {
		return point{}, err
	}
	defer os.RemoveAll(dir)
	groups, err := newCPUGroups(fmt.Sprintf("orderly-scale-%d-%d", os.Getpid(), n), quota)
	if err != nil {
		return point{}, err
	}
	defer groups.remove() // after the cluster's Stop: a group with processes stays
	c, err := harness.StartCluster(harness.ClusterConfig{Orderd: filepath.Join(bin, "orderd"), Dir: dir, Nodes: n,
		Extra: []string{"--shards", strconv.Itoa(n), "--replicas", "3"}})
	if err != nil {
		return point{}, err
	}
	defer c.Stop()
	for _, node := range c.Nodes {
		if err := groups.add(node.ID, node.Pid()); err != nil {
			return point{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(client.Options{Addrs: c.Addrs(), RetryTimeout: 30 * time.Second})
	if err != nil {
		return point{}, err
	}
	defer cl.Close()
	if err := cl.WaitShardLeaders(ctx); err != nil {
		return point{}, err
	}
	// One leader per node: elections may pile them up, and the point
	// measures the shards, not where the elections fell.
	if err := cl.BalanceShards(ctx, func(string) {}); err != nil {
		return point{}, fmt.Errorf("balance: %w", err)
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Addrs: c.Addrs(), Customers: perNode * n, Duration: dur,
		Mix: loadgen.MixRegular, Pipeline: 1, Conns: 4 * n, RetryTimeout: 10 * time.Second})
	if err != nil {
		return point{}, err
	}
	if res.Errors > 0 {
		return point{}, fmt.Errorf("%d errors in the run", res.Errors)
	}
	return point{Nodes: n, Shards: n, OrdersPerS: res.Throughput, P99Ms: res.Write.P99}, nil
}

func write(out string, rep report) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "scale-latest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# make bench-scale: %s\n\nEvery node held to %.2f CPUs (its own cgroup); shards = nodes, 3 replicas each; writes straight to the shards' leaders (shard-aware client).\n\n",
		time.Now().UTC().Format(time.RFC3339), rep.QuotaCPUs)
	fmt.Fprintf(&md, "| nodes | shards | orders/s | vs the first | p99 ms |\n|---:|---:|---:|---:|---:|\n")
	for _, p := range rep.Points {
		fmt.Fprintf(&md, "| %d | %d | %.0f | %.2fx | %.2f |\n", p.Nodes, p.Shards, p.OrdersPerS, p.OrdersPerS/rep.Points[0].OrdersPerS, p.P99Ms)
	}
	if err := os.WriteFile(filepath.Join(out, "scale-latest.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return drawScale(filepath.Join(out, "scale-latest.png"), rep)
}
