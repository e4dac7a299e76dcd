package e2e

import (
	"context"
	"encoding/json"
	"orderly/pki"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"orderly/internal/freeport"
	"orderly/wire"
)

// orderctl runs the orderctl binary against addrs and returns its output.
func orderctl(t *testing.T, addrs []string, args ...string) (string, error) {
	t.Helper()
	argv := append([]string{"--addr", strings.Join(addrs, ","), "--timeout", "20s"}, args...)
	out, err := exec.Command(filepath.Join(bin, "orderctl"), argv...).CombinedOutput()
	return string(out), err
}

func mustOrderctl(t *testing.T, addrs []string, args ...string) string {
	t.Helper()
	out, err := orderctl(t, addrs, args...)
	if err != nil {
		t.Fatalf("orderctl %v: %v\n%s", args, err, out)
	}
	return out
}

func memberIDs(t *testing.T, addrs []string) []string {
	t.Helper()
	var ms []struct {
		ID         string `json:"id"`
		ClientAddr string `json:"client_addr"`
	}
	out := mustOrderctl(t, addrs, "--json", "members", "list")
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		t.Fatalf("members list JSON: %v\n%s", err, out)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// addEmptyNode starts a node with an empty data dir, which waits to be
// added, and adds it through orderctl; it returns the node's client address.
func addEmptyNode(t *testing.T, addrs []string, id string) string {
	t.Helper()
	raftAddr, _ := freeport.Addr("127.0.0.1")
	clientAddr, _ := freeport.Addr("127.0.0.1")
	node := exec.Command(filepath.Join(bin, "orderd"), append([]string{"--id", id, "--data-dir", filepath.Join(t.TempDir(), id),
		"--raft-addr", raftAddr, "--client-addr", clientAddr}, certs.Flags(id)...)...)
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Process.Kill(); node.Wait() })
	mustOrderctl(t, addrs, "members", "add", "--id", id, "--raft-addr", raftAddr)
	return clientAddr
}

// TestMembershipThroughOrderctl grows a running cluster by a node started
// with no --peers (join mode), checks that it catches up and publishes its
// client address, moves leadership with transfer-leader, and removes the
// node again — all through the orderctl binary.
func TestMembershipThroughOrderctl(t *testing.T) {
	c := startCluster(t)
	addrs := c.Addrs()
	for k := int32(1); k <= 20; k++ {
		mustOrderctl(t, addrs, "order", "--customer", "5", "--number", strconv.Itoa(int(k)), "--type", "regular")
	}

	clientAddr := addEmptyNode(t, addrs, "n4")
	waitFor(t, 30*time.Second, "n4 to catch up and publish its client address", func() bool {
		r, err := orderctl(t, []string{clientAddr}, "--json", "get", "--customer", "5", "--consistency", "stale")
		if err != nil || !strings.Contains(r, `"order_count": 20`) {
			return false
		}
		return strings.Contains(mustOrderctl(t, addrs, "--json", "members", "list"), clientAddr)
	})
	if ids := memberIDs(t, addrs); len(ids) != 4 {
		t.Fatalf("members after add: %v", ids)
	}
	// A linearizable read on the new member sees everything acknowledged.
	if out := mustOrderctl(t, []string{clientAddr}, "--json", "get", "--customer", "5"); !strings.Contains(out, `"order_count": 20`) {
		t.Fatalf("linearizable read on n4: %s", out)
	}

	// Hand leadership to n4, then back away from it, and remove it.
	mustOrderctl(t, addrs, "transfer-leader", "--to", "n4")
	waitFor(t, 20*time.Second, "n4 to lead", func() bool {
		out, err := orderctl(t, []string{clientAddr}, "--json", "status")
		return err == nil && strings.Contains(out, `"role": "leader"`)
	})
	mustOrderctl(t, append([]string{clientAddr}, addrs...), "transfer-leader", "--to", "n2")
	waitFor(t, 20*time.Second, "n2 to lead", func() bool { return mustLeader(t, c).ID == "n2" })
	mustOrderctl(t, addrs, "members", "remove", "--id", "n4")
	if ids := memberIDs(t, addrs); len(ids) != 3 || strings.Contains(strings.Join(ids, ","), "n4") {
		t.Fatalf("members after remove: %v", ids)
	}
	// The three go on taking orders.
	mustOrderctl(t, addrs, "order", "--customer", "5", "--number", "21")
	cl := mustClient(t, addrs...)
	if r := mustGet(t, cl, 5, wire.Linearizable); r.OrderCount != 21 {
		t.Fatalf("customer 5 has %d orders, want 21", r.OrderCount)
	}
}

// TestWipedNodeCatchesUpThroughOldConfigurations: a node catching up
// replays old configurations, and one of them may not list the leader
// (removed, then added again). n2 is removed, 600 orders later added
// again, and made leader; n3's disk is lost (wiped, restarted empty), so
// it replays the log from n2 in batches and passes through the removal.
// The Raft port refuses senders that are not members (issue 26), but n3
// must not refuse its own leader: it asks the other members, a majority
// of whom list n2, and catches up. (A 10-minute chaos run wedged a wiped
// node so before the members were asked.)
func TestWipedNodeCatchesUpThroughOldConfigurations(t *testing.T) {
	c := startCluster(t)
	n2, n3 := c.Node("n2"), c.Node("n3")
	if mustLeader(t, c).ID == "n2" {
		mustOrderctl(t, c.Addrs(), "transfer-leader", "--to", "n1")
		waitFor(t, 20*time.Second, "n1 to lead", func() bool { return mustLeader(t, c).ID == "n1" })
	}
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	mustOrderctl(t, []string{c.Node("n1").ClientAddr, n3.ClientAddr}, "members", "remove", "--id", "n2")
	mustOrders(t, []string{c.Node("n1").ClientAddr, n3.ClientAddr}, 6, 600) // more than one batch (256 entries) between removal and re-add
	if err := n2.Wipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(n2); err != nil {
		t.Fatal(err)
	}
	mustOrderctl(t, []string{c.Node("n1").ClientAddr}, "members", "add", "--id", "n2", "--raft-addr", n2.RaftAddr)
	waitFor(t, 30*time.Second, "n2 to catch up", func() bool {
		r, err := mustClient(t, n2.ClientAddr).Get(context.Background(), 6, wire.Stale)
		return err == nil && r.OrderCount == 600
	})
	mustOrderctl(t, c.Addrs(), "transfer-leader", "--to", "n2")
	waitFor(t, 20*time.Second, "n2 to lead", func() bool { return mustLeader(t, c).ID == "n2" })

	if err := n3.Wipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	// While n3 knows no configuration, a stranger's certificate is still
	// refused: n9 is not among its --peers, and no member vouches for it.
	n9, err := pki.Load(pki.InDir(certs.Dir, "n9"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := forgeAs(t, c, n9.NodeClientConfig, "n9", "127.0.0.1:1", true); n != 0 {
		t.Fatalf("%d of n9's Raft requests accepted", n)
	}
	mustOrders(t, c.Addrs(), 7, 5)
	waitFor(t, 30*time.Second, "wiped n3 to catch up from leader n2", func() bool {
		r, err := mustClient(t, n3.ClientAddr).Get(context.Background(), 7, wire.Stale)
		return err == nil && r.OrderCount == 5
	})
	if r := mustGet(t, mustClient(t, n3.ClientAddr), 6, wire.Stale); r.OrderCount != 600 {
		t.Fatalf("n3 has %d orders of customer 6, want 600", r.OrderCount)
	}
}
