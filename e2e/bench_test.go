package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"orderly/loadgen"
	"orderly/wire"
)

// TestBenchThroughBalancer runs `ordertest bench` as a user would, through
// the balancer (8 customers sharing 3 connections), and checks that its report adds up: every operation done
// once, none failed, and the order counts in the cluster agree.
func TestBenchThroughBalancer(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	dir := t.TempDir()
	tl := filepath.Join(dir, "timeline.csv")
	res := runBench(t, b.Addr, "--customers", "8", "--orders", "50", "--type", "mixed", "--reads", "20", "--consistency", "session",
		"--pipeline", "2", "--conns", "3", "--first-customer", "100", "--timeline", tl)
	if res.Ops != 8*50 || res.Errors != 0 || res.Writes+res.Reads != res.Ops || res.Reads == 0 {
		t.Fatalf("bench did %d ops (%d writes, %d reads), %d errors; want 400 with some reads and no errors", res.Ops, res.Writes, res.Reads, res.Errors)
	}
	if res.Conns != 3 {
		t.Fatalf("bench used %d connections, asked for 3", res.Conns)
	}
	if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P99 {
		t.Fatalf("latency summary does not hold together: %+v", res.Latency)
	}
	for _, f := range []string{tl, filepath.Join(dir, "timeline.png")} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Fatalf("bench output %s missing: %v", f, err)
		}
	}
	// The cluster saw every write once.
	checkBenchWrites(t, b.Addr, 100, 8, res)

	// --rate bounds the operations of all customers together: in 2 s at
	// 100/s, at most 200 and the bucket's one token (an upper bound, not
	// a speed: a slow machine does fewer).
	res = runBench(t, b.Addr, "--customers", "8", "--duration", "2s", "--rate", "100", "--first-customer", "300")
	if res.Ops < 1 || res.Ops > 201 || res.Errors != 0 {
		t.Fatalf("bench at --rate 100 for 2 s did %d ops, %d errors; want 1 to 201, no errors", res.Ops, res.Errors)
	}
	checkBenchWrites(t, b.Addr, 300, 8, res)
}

// runBench runs ordertest bench against addr with args and returns its
// JSON result.
func runBench(t *testing.T, addr string, args ...string) loadgen.Result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	argv := append([]string{"--addr", addr, "bench", "--json-file", out, "--quiet"}, args...)
	if msg, err := exec.Command(filepath.Join(bin, "ordertest"), argv...).CombinedOutput(); err != nil {
		t.Fatalf("ordertest bench %v: %v\n%s", args, err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res loadgen.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("bench JSON: %v", err)
	}
	return res
}

// checkBenchWrites: the n customers from first hold exactly the orders
// the bench acknowledged.
func checkBenchWrites(t *testing.T, addr string, first, n int32, res loadgen.Result) {
	t.Helper()
	cl := mustClient(t, addr)
	var orders uint64
	for cust := first; cust < first+n; cust++ {
		orders += mustGet(t, cl, cust, wire.Linearizable).OrderCount
	}
	if int64(orders) != res.Writes {
		t.Fatalf("cluster holds %d orders of the bench's customers, bench acknowledged %d", orders, res.Writes)
	}
}

// TestBenchThroughSeedPort: `ordertest bench --seed-port` speaks the
// seed's protocol to the balancer's seed port, one connection per
// customer; every order it counts is in the cluster once.
func TestBenchThroughSeedPort(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	res := runBench(t, b.LegacyAddr, "--seed-port", "--customers", "6", "--orders", "40", "--reads", "25", "--first-customer", "200")
	if res.Ops != 6*40 || res.Errors != 0 || res.Reads == 0 || res.Writes == 0 {
		t.Fatalf("seed-port bench did %d ops (%d writes, %d reads), %d errors; want 240, both kinds, no errors", res.Ops, res.Writes, res.Reads, res.Errors)
	}
	checkBenchWrites(t, b.Addr, 200, 6, res)
}
