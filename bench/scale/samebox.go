package main

import (
	"context"
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

// sameBox is `bench/scale --same-box`: 3 nodes on this machine, no quota,
// one shard against 3, writes of 256 clients through a balancer, the two
// interleaved for rounds rounds (the machine is noisy: A and B side by
// side). It prints a table; the numbers go to docs/performance.md.
func sameBox(bin string, dur time.Duration, rounds int) error {
	type row struct {
		shards           int
		ops, p99, cpuPer []float64
	}
	rows := []*row{{shards: 1}, {shards: 3}}
	for round := range rounds {
		for _, r := range rows {
			ops, p99, cpu, err := throughBalancer(bin, r.shards, dur)
			if err != nil {
				return fmt.Errorf("%d shards, round %d: %w", r.shards, round+1, err)
			}
			fmt.Printf("round %d, %d shard(s): %.0f orders/s, p99 %.2f ms, %.0f µs of node CPU per order\n", round+1, r.shards, ops, p99, cpu)
			r.ops, r.p99, r.cpuPer = append(r.ops, ops), append(r.p99, p99), append(r.cpuPer, cpu)
		}
	}
	fmt.Println("| shards | orders/s per round | p99 ms | node CPU µs per order |")
	fmt.Println("|---:|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %d | %s | %s | %s |\n", r.shards, join(r.ops, "%.0f"), join(r.p99, "%.2f"), join(r.cpuPer, "%.0f"))
	}
	return nil
}

func join(vs []float64, f string) string {
	var s []string
	for _, v := range vs {
		s = append(s, fmt.Sprintf(f, v))
	}
	return strings.Join(s, ", ")
}

// throughBalancer runs one cluster of 3 nodes and shards shards behind a
// balancer, 256 customers writing for dur, and returns orders/s, the
// write p99 and the nodes' CPU per order.
func throughBalancer(bin string, shards int, dur time.Duration) (float64, float64, float64, error) {
	dir, err := os.MkdirTemp("", "orderly-samebox")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	c, err := harness.StartCluster(harness.ClusterConfig{Orderd: filepath.Join(bin, "orderd"), Dir: dir,
		Extra: []string{"--shards", strconv.Itoa(shards)}})
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Stop()
	lb, err := c.StartBalancer(filepath.Join(bin, "orderlb"))
	if err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(client.Options{Addrs: c.Addrs(), RetryTimeout: 30 * time.Second})
	if err != nil {
		return 0, 0, 0, err
	}
	defer cl.Close()
	if err := cl.WaitShardLeaders(ctx); err != nil {
		return 0, 0, 0, err
	}
	if shards > 1 {
		if err := cl.BalanceShards(ctx, func(string) {}); err != nil {
			return 0, 0, 0, err
		}
	}
	before, err := cpuOf(c)
	if err != nil {
		return 0, 0, 0, err
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Addrs: []string{lb.Addr}, Customers: 256, Duration: dur,
		Mix: loadgen.MixRegular, Pipeline: 1, Conns: 16, RetryTimeout: 10 * time.Second})
	if err != nil {
		return 0, 0, 0, err
	}
	after, err := cpuOf(c)
	if err != nil {
		return 0, 0, 0, err
	}
	if res.Errors > 0 {
		return 0, 0, 0, fmt.Errorf("%d errors", res.Errors)
	}
	return res.Throughput, res.Write.P99, (after - before).Seconds() * 1e6 / float64(res.Writes), nil
}

// cpuOf is the CPU time the cluster's nodes have used (utime + stime).
func cpuOf(c *harness.Cluster) (time.Duration, error) {
	var total time.Duration
	for _, n := range c.Nodes {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.Pid()))
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100 // clock ticks (USER_HZ 100)
	}
	return total, nil
}
