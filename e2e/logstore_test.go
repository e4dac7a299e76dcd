package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// TestWALStore: a cluster on hashicorp/raft-wal (the default store of a
// new data dir) keeps every acknowledged order across a SIGKILL of its
// leader and of every node at once; status says which store; a second
// orderd on a data dir in use is refused; asking a WAL data dir for
// boltdb is refused with the reason.
func TestWALStore(t *testing.T) {
	c := startCluster(t)
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
	restartAll(t, c)
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

// TestLogStoreMove moves a running cluster from BoltDB to the WAL the way
// deploy/README.md says: one node at a time, stop it (SIGTERM: a leader
// hands over first), empty its data dir, start it with --log-store wal,
// wait for /readyz (caught up, votes released) before the next. Four
// customers order all the while; every acknowledged order is there once.
func TestLogStoreMove(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true, Extra: []string{"--log-store", "boltdb"}})
	const customers = 4
	o := startOrdering(t, c.Addrs(), customers, 0)
	total := o.total

	for _, n := range c.Nodes {
		before := total()
		if err := n.Terminate(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := n.Wipe(); err != nil {
			t.Fatal(err)
		}
		n.Args = []string{"--log-store", "wal"}
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, n.ID+" on the WAL, caught up and ready", func() bool {
			code, _ := httpsGet(t, n.HTTPAddr, "/readyz", "")
			return code == http.StatusOK
		})
		st, err := harness.Status(context.Background(), n.ClientAddr, certs.Admin())
		if err != nil || statOf(st, "log_store wal") != 1 {
			t.Fatalf("%s after the move: %v %+v", n.ID, err, st.Stats)
		}
		waitFor(t, 20*time.Second, "orders after moving "+n.ID, func() bool { return total() > before+100 })
		t.Logf("%s moved to the WAL; %d orders acknowledged so far", n.ID, total())
	}
	o.stop(t, false)
	cl := mustClient(t, c.Addrs()...)
	for i := range customers {
		r := mustGet(t, cl, int32(i), wire.Linearizable)
		if int64(r.OrderCount) != o.acked[i].Load() || int64(r.LastOrder) != o.acked[i].Load() {
			t.Fatalf("customer %d: %d orders (last %d), %d acknowledged", i, r.OrderCount, r.LastOrder, o.acked[i].Load())
		}
	}
	for _, n := range c.Nodes {
		if _, err := os.Stat(filepath.Join(n.DataDir, "raft.db")); err == nil {
			t.Fatalf("%s still has its BoltDB log", n.ID)
		}
	}
}
