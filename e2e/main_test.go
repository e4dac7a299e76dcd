// Package e2e drives the built binaries as processes: real TCP on
// 127.0.0.1, real fsync'd data dirs, nodes killed with SIGKILL.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/client"
	"orderly/harness"
	"orderly/internal/cli"
	"orderly/wire"
)

// bin holds the binaries built once for all tests, with -tags faults (so
// the chaos checker can be shown to catch broken nodes); prodBin the same
// built as a release is, without the fault switches.
var bin, prodBin string

// certs is the CA of every cluster the tests start (mutual TLS, as in
// production) and its certificates; orderctl finds them through
// $ORDERLY_CERTS.
var certs *harness.Certs

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orderly-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, prodBin = dir, filepath.Join(dir, "prod")
	for _, b := range []struct{ out, tags string }{{bin, "faults"}, {prodBin, ""}} {
		build := exec.Command("go", "build", "-tags", b.tags, "-o", b.out+string(os.PathSeparator), "orderly/cmd/...")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build binaries:", err)
			os.Exit(1)
		}
	}
	if certs, err = harness.NewCerts(filepath.Join(dir, "certs"), "127.0.0.1"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(cli.CertsEnv, certs.Dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startCluster starts a 3-node cluster that the test stops at its end, and
// waits for a leader.
func startCluster(t *testing.T, extra ...string) *harness.Cluster {
	t.Helper()
	return startClusterWith(t, harness.ClusterConfig{Extra: extra})
}

// startClusterWith is startCluster with more of the configuration: the
// shared certificates, the test binaries and a temporary dir unless cfg
// says otherwise.
func startClusterWith(t *testing.T, cfg harness.ClusterConfig) *harness.Cluster {
	t.Helper()
	if cfg.Certs == nil {
		cfg.Certs = certs
	}
	if cfg.Orderd == "" {
		cfg.Orderd = filepath.Join(bin, "orderd")
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	c, err := harness.StartCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			logs := []string{}
			for _, n := range c.Nodes {
				logs = append(logs, n.LogPath)
			}
			for _, b := range c.Balancers {
				logs = append(logs, b.LogPath)
			}
			for _, p := range logs {
				if b, err := os.ReadFile(p); err == nil {
					t.Logf("---- %s (last 3000 bytes) ----\n%s", filepath.Base(p), tail(b, 3000))
				}
			}
		}
	})
	mustLeader(t, c)
	return c
}

// restartAll SIGKILLs every node of c, starts them again on their data
// dirs and waits for a leader.
func restartAll(t *testing.T, c *harness.Cluster) {
	t.Helper()
	for _, n := range c.Nodes {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	mustLeader(t, c)
}

// startBalancer starts orderlb in front of c; startCluster's cleanup
// stops it.
func startBalancer(t *testing.T, c *harness.Cluster, extra ...string) *harness.Balancer {
	t.Helper()
	b, err := c.StartBalancer(filepath.Join(bin, "orderlb"), extra...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// followersOf lists c's nodes but leader.
func followersOf(c *harness.Cluster, leader *harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range c.Nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

func mustLeader(t *testing.T, c *harness.Cluster) *harness.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustClient(t *testing.T, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Addrs: addrs, RetryTimeout: 20 * time.Second, DialTimeout: 20 * time.Second, TLS: certs.Admin()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustOrders places orders 1..n of one customer through one session.
func mustOrders(t *testing.T, addrs []string, customer, n int32) {
	t.Helper()
	mustOrdersWith(t, mustClient(t, addrs...), customer, n)
}

// mustOrdersWith is mustOrders through the client given.
func mustOrdersWith(t *testing.T, c *client.Client, customer, n int32) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	for k := int32(1); k <= n; k++ {
		if _, err := s.Order(context.Background(), customer, k, wire.Regular); err != nil {
			t.Fatalf("customer %d order %d: %v", customer, k, err)
		}
	}
}

// mustGet reads a record, linearizably unless told otherwise.
func mustGet(t *testing.T, c *client.Client, customer int32, cons wire.Consistency) wire.Record {
	t.Helper()
	r, err := c.Get(context.Background(), customer, cons)
	if err != nil {
		t.Fatalf("get customer %d: %v", customer, err)
	}
	return r
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ordering is customers 0..n-1 placing orders 1, 2, 3... through addrs,
// each on a client of its own, from startOrdering until they have placed
// max each (0: until stop).
type ordering struct {
	acked []atomic.Int64 // per customer, acknowledged
	quit  chan struct{}
	wg    sync.WaitGroup
	errs  chan error
}

func startOrdering(t *testing.T, addrs []string, customers int, max int32) *ordering {
	t.Helper()
	o := &ordering{acked: make([]atomic.Int64, customers), quit: make(chan struct{}), errs: make(chan error, customers)}
	for i := range customers {
		o.wg.Add(1)
		go func(cust int32) {
			defer o.wg.Done()
			cl := mustClient(t, addrs...)
			for k := int32(1); max == 0 || k <= max; k++ {
				select {
				case <-o.quit:
					return
				default:
				}
				if _, err := cl.Order(context.Background(), cust, k, wire.Regular); err != nil {
					o.errs <- fmt.Errorf("customer %d order %d: %w", cust, k, err)
					return
				}
				o.acked[cust].Add(1)
			}
		}(int32(i))
	}
	return o
}

// total is the orders acknowledged so far.
func (o *ordering) total() (n int64) {
	for i := range o.acked {
		n += o.acked[i].Load()
	}
	return n
}

// finish waits for an ordering with a max to end, failing the test if it
// takes longer than within (the count so far says how far it got) or if a
// customer met an error.
func (o *ordering) finish(t *testing.T, within time.Duration, beside string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("%d customers placed %d orders in %v %s", len(o.acked), o.total(), within, beside)
	}
	o.stop(t, true)
}

// stop ends the ordering (or, with a max, waits for it) and fails the
// test on the first error a customer met.
func (o *ordering) stop(t *testing.T, wait bool) {
	t.Helper()
	if !wait {
		close(o.quit)
	}
	o.wg.Wait()
	close(o.errs)
	for err := range o.errs {
		t.Fatal(err)
	}
}

// orderLoad places orders of one customer through cl, one after another,
// until its stop is called; stop waits for the last and fails the test
// if any order failed or none was placed (what names the load).
type orderLoad struct {
	cancel         context.CancelFunc
	done           chan struct{}
	placed, failed atomic.Int64
	firstErr       atomic.Value
}

func startOrderLoad(cl *client.Client, customer int32) *orderLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &orderLoad{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for k := int32(1); ctx.Err() == nil; k++ {
			if _, err := cl.Order(ctx, customer, k, wire.Regular); err != nil && ctx.Err() == nil {
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
			} else if err == nil {
				l.placed.Add(1)
			}
		}
	}()
	return l
}

// stop ends the load and checks it; it returns how many were placed.
func (l *orderLoad) stop(t *testing.T, what string) int64 {
	t.Helper()
	l.cancel()
	<-l.done
	if l.failed.Load() > 0 || l.placed.Load() == 0 {
		t.Fatalf("orders %s: %d placed, %d failed (first: %v)", what, l.placed.Load(), l.failed.Load(), l.firstErr.Load())
	}
	return l.placed.Load()
}
