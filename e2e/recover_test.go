package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// recoverNode runs `orderd --recover` on a stopped node's data dir.
func recoverNode(id, dataDir, members string) (string, error) {
	out, err := exec.Command(filepath.Join(bin, "orderd"), "--id", id, "--data-dir", dataDir, "--recover", members).CombinedOutput()
	return string(out), err
}

// TestRecoverFromLostQuorum loses two of three nodes for good (SIGKILL,
// data dirs deleted), forces a one-node membership onto the survivor with
// `orderd --recover`, restarts it, and checks that every acknowledged
// order is there, that it takes new ones, and that the lost nodes, started
// again on empty disks with their usual --peers, wait to be added instead
// of bootstrapping a second cluster, then catch up.
func TestRecoverFromLostQuorum(t *testing.T) {
	c := startCluster(t)
	mustOrders(t, c.Addrs(), 9, 30)
	n1, n2, n3 := c.Node("n1"), c.Node("n2"), c.Node("n3")
	for _, n := range []*harness.Node{n1, n2, n3} {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*harness.Node{n2, n3} {
		if err := os.RemoveAll(n.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	members := "n1=" + n1.RaftAddr

	// Refusals first: each must fail with a reason and change nothing.
	for _, bad := range []struct{ id, dir, members, want string }{
		{"n1", n1.DataDir, "n2=" + n2.RaftAddr, "not among the members"},
		{"n2", n2.DataDir, "n2=" + n2.RaftAddr, "no Raft log to recover"},
		{"n2", n1.DataDir, "n2=" + n2.RaftAddr, `is node "n1"'s`},
	} {
		out, err := recoverNode(bad.id, bad.dir, bad.members)
		if err == nil || !strings.Contains(out, bad.want) {
			t.Fatalf("recover %s on %s with %s: err %v, output %q; want a refusal saying %q", bad.id, bad.dir, bad.members, err, out, bad.want)
		}
	}
	if out, err := recoverNode("n1", n1.DataDir, members); err != nil {
		t.Fatalf("recover n1: %v\n%s", err, out)
	}

	// The survivor, started as before, leads the one-node cluster.
	if err := c.Start(n1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "n1 to lead alone", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := harness.Status(ctx, n1.ClientAddr, certs.Admin())
		return err == nil && st.Role == "leader"
	})
	// Recovering a running node fails rather than waiting on its lock.
	if out, err := recoverNode("n1", n1.DataDir, members); err == nil || !strings.Contains(out, "still running") {
		t.Fatalf("recover of a running node: err %v, output %q", err, out)
	}
	one := mustClient(t, n1.ClientAddr)
	if r := mustGet(t, one, 9, wire.Linearizable); r.OrderCount != 30 || r.LastOrder != 30 {
		t.Fatalf("after recovery customer 9 has %d orders (last %d), want the 30 acknowledged", r.OrderCount, r.LastOrder)
	}
	if _, err := one.Order(context.Background(), 9, 31, wire.Custom); err != nil {
		t.Fatalf("order after recovery: %v", err)
	}

	// The lost nodes come back on new disks with their usual flags, --peers
	// included (what `docker compose up` does). They must not bootstrap a
	// second, empty cluster under the same addresses: they wait, and join
	// once added.
	restartEmptyStopped(t, c, n2)
	restartEmptyStopped(t, c, n3)
	if st, err := harness.Status(context.Background(), n1.ClientAddr, certs.Admin()); err != nil || st.Role != "leader" {
		t.Fatalf("n1 after the lost nodes came back: %+v, %v; want it still leading", st, err)
	}
	for _, n := range []*harness.Node{n2, n3} {
		if st, err := harness.Status(context.Background(), n.ClientAddr, certs.Admin()); err != nil || st.Term != 0 || st.LastIndex != 0 {
			t.Fatalf("%s before it is added: %+v, %v; want no Raft state (term 0, empty log)", n.ID, st, err)
		}
		// It has nothing to read, and says so rather than answer with an
		// empty record.
		if out, err := orderctl(t, []string{n.ClientAddr}, "--timeout", "1s", "get", "--customer", "9", "--consistency", "stale"); err == nil || !strings.Contains(out, "no Raft state") {
			t.Fatalf("stale read on %s before it is added: err %v, output %q; want Unavailable", n.ID, err, out)
		}
	}
	for _, n := range []*harness.Node{n2, n3} {
		mustOrderctl(t, []string{n1.ClientAddr}, "members", "add", "--id", n.ID, "--raft-addr", n.RaftAddr)
	}
	for _, n := range []*harness.Node{n2, n3} {
		waitFor(t, 30*time.Second, n.ID+" to catch up", func() bool {
			out, err := orderctl(t, []string{n.ClientAddr}, "--json", "get", "--customer", "9", "--consistency", "stale")
			return err == nil && strings.Contains(out, `"order_count": 31`)
		})
	}
	if ids := memberIDs(t, []string{n1.ClientAddr}); strings.Join(ids, ",") != "n1,n2,n3" {
		t.Fatalf("members after recovery and re-adding: %v, want n1,n2,n3", ids)
	}
	mustOrderctl(t, c.Addrs(), "order", "--customer", "9", "--number", "32", "--type", "regular")
}

// TestRecoverShardedFromLostQuorum: a cluster of three shards, each with
// a replica on every node, loses two nodes for good; `orderd --recover`
// on the survivor forces one-node memberships onto the meta group and
// every shard, and the survivor alone serves every acknowledged order of
// every shard and takes new ones.
func TestRecoverShardedFromLostQuorum(t *testing.T) {
	c := startCluster(t, "--shards", "3")
	const customers, orders = 12, 10 // customers 0-11 fall in every shard
	for cust := range int32(customers) {
		mustOrders(t, c.Addrs(), cust, orders)
	}
	n1, n2, n3 := c.Node("n1"), c.Node("n2"), c.Node("n3")
	for _, n := range []*harness.Node{n1, n2, n3} {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*harness.Node{n2, n3} {
		if err := os.RemoveAll(n.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := recoverNode("n1", n1.DataDir, "n1="+n1.RaftAddr); err != nil {
		t.Fatalf("recover n1: %v\n%s", err, out)
	}
	if err := c.Start(n1); err != nil {
		t.Fatal(err)
	}
	one := mustClient(t, n1.ClientAddr)
	for cust := range int32(customers) {
		var r wire.Record
		waitFor(t, 20*time.Second, "customer's shard to serve on the survivor", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var err error
			r, err = one.Get(ctx, cust, wire.Linearizable)
			return err == nil
		})
		if r.OrderCount != orders {
			t.Fatalf("after recovery customer %d has %d orders, want the %d acknowledged", cust, r.OrderCount, orders)
		}
		if _, err := one.Order(context.Background(), cust, orders+1, wire.Regular); err != nil {
			t.Fatalf("order of customer %d after recovery: %v", cust, err)
		}
	}
}
