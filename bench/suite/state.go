package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"orderly/client"
	"orderly/harness"
	"orderly/loadgen"
	"orderly/wire"
)

// stateRows measures what a big state costs to move: a backup of e's
// cluster (the leader takes a snapshot, orderctl streams it to a file and
// fsyncs it), then a new cluster restored from that file (orderd
// --restore on three empty data dirs) until a linearizable read of the
// first new customer answers.
func stateRows(binDir, dir string, e *env, experts int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	file := filepath.Join(dir, "state.backup")
	args := append(e.certs.CLIFlags("orderctl"), "--addr", strings.Join(e.c.Addrs(), ","), "--timeout", "60s", "--json", "snapshot", "save", file)
	var stderr strings.Builder
	cmd := exec.Command(filepath.Join(binDir, "orderctl"), args...)
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		return "", fmt.Errorf("snapshot save: %v: %s", err, stderr.String())
	}
	var saved struct {
		Index uint64 `json:"index"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal(out, &saved); err != nil {
		return "", fmt.Errorf("snapshot save said %q: %w", out, err)
	}

	start = time.Now()
	rc, err := harness.StartCluster(harness.ClusterConfig{Orderd: filepath.Join(binDir, "orderd"), Dir: filepath.Join(dir, "cluster"),
		Experts: experts, Certs: e.certs, Extra: []string{"--restore", file}})
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer rc.Stop()
	if err := firstRead(rc, 2*time.Minute); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	restored := time.Since(start)
	mb := float64(saved.Bytes) / (1 << 20)
	return fmt.Sprintf("\n## A big state: backup and restore\n\nAfter the new-customers run: the state at index %d, "+
		"a snapshot of %.1f MiB.\n\n| what | seconds |\n|---|---:|\n"+
		"| backup: the leader takes a snapshot, `orderctl snapshot save` streams it to a file and fsyncs it | %.2f |\n"+
		"| restore: `orderd --restore` on three empty data dirs, until a linearizable read answers | %.2f |\n",
		saved.Index, mb, took.Seconds(), restored.Seconds()), nil
}

// firstRead waits until c answers a linearizable read of the first new
// customer.
func firstRead(c *harness.Cluster, patience time.Duration) error {
	start := time.Now()
	cl, err := client.New(client.Options{Addrs: c.Addrs(), TLS: c.ClientTLS(), RetryTimeout: time.Second})
	if err != nil {
		return err
	}
	defer cl.Close()
	id := loadgen.NewCustomerID(1)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rec, err := cl.Get(ctx, id, wire.Linearizable)
		cancel()
		if err == nil && rec.OrderCount == 1 {
			return nil
		}
		if time.Since(start) > patience {
			return fmt.Errorf("no linearizable read of customer %d after %v (record %+v, %v)", id, patience, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scaling sets the new-customers run against writes for existing
// customers at the same concurrency (issue 15's target: at least 80%).
func scaling(ss []scenario, rs []*loadgen.Result) string {
	var fresh, existing *loadgen.Result
	for i, s := range ss {
		switch {
		case s.Config.NewCustomers > 0:
			fresh = rs[i]
		case strings.HasPrefix(s.Name, "writes c=256 via leader"):
			existing = rs[i]
		}
	}
	if fresh == nil || existing == nil {
		return ""
	}
	return fmt.Sprintf("\nNew customers in random order vs orders of existing customers, 256 clients via the leader: "+
		"%.0f vs %.0f orders/s = **%.0f%%**.\n", fresh.Throughput, existing.Throughput, 100*fresh.Throughput/existing.Throughput)
}
