package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// TestWALStore: a cluster on hashicorp/raft-wal (--log-store wal) keeps
// every acknowledged order across a SIGKILL of its leader and of every
// node at once; status says which store; a second orderd on a data dir in
// use is refused; asking a WAL data dir for boltdb is refused with the
// reason.
func TestWALStore(t *testing.T) {
	c := startCluster(t, "--log-store", "wal")
	cl := mustClient(t, c.Addrs()...)
	mustOrdersWith(t, cl, 1, 30)
	for _, n := range c.Nodes {
		if _, err := os.Stat(filepath.Join(n.DataDir, "wal")); err != nil {
			t.Fatalf("%s has no wal dir: %v", n.ID, err)
		}
		st, err := harness.Status(context.Background(), n.ClientAddr, certs.Admin())
		if err != nil || statOf(st, "log_store wal") != 1 {
			t.Fatalf("%s status does not say log_store wal: %v %+v", n.ID, err, st.Stats)
		}
	}
	leader := mustLeader(t, c)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	mustOrdersWith(t, cl, 2, 20)
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	// Every node at once: what was acknowledged is on disk.
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
	for cust, want := range map[int32]uint64{1: 30, 2: 20} {
		if r := mustGet(t, cl, cust, wire.Linearizable); r.OrderCount != want {
			t.Fatalf("customer %d has %d orders after the restarts, %d acknowledged", cust, r.OrderCount, want)
		}
	}

	n1 := c.Node("n1")
	start := time.Now()
	if out, err := orderdOn(n1); err == nil || !strings.Contains(string(out), "data dir in use by another orderd") {
		t.Fatalf("a second orderd on n1's WAL data dir: %v\n%s", err, out)
	}
	t.Logf("second orderd refused after %v", time.Since(start).Round(time.Millisecond))
	if err := n1.Kill(); err != nil {
		t.Fatal(err)
	}
	if out, err := orderdOn(n1, "--log-store", "boltdb"); err == nil || !strings.Contains(string(out), "holds a wal log store, not boltdb") {
		t.Fatalf("--log-store boltdb on a WAL data dir: %v\n%s", err, out)
	}
}
