package e2e

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// notBootstrapping is what a node with an empty data dir and --peers logs
// when it finds that the cluster already exists.
const notBootstrapping = "not bootstrapping: the cluster exists"

// restartEmpty kills a node, deletes its data dir and starts it again with
// its usual flags, --peers included: a replaced disk, or `docker compose
// up` after a volume was lost. It returns once the node has logged that it
// will not bootstrap.
func restartEmpty(t *testing.T, c *harness.Cluster, n *harness.Node) {
	t.Helper()
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	restartEmptyStopped(t, c, n)
}

// restartEmptyStopped is restartEmpty for a node already stopped.
func restartEmptyStopped(t *testing.T, c *harness.Cluster, n *harness.Node) {
	t.Helper()
	before := logCount(t, n.LogPath, notBootstrapping)
	if err := os.RemoveAll(n.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, n.ID+" to decide not to bootstrap", func() bool {
		return logCount(t, n.LogPath, notBootstrapping) > before
	})
}

func logCount(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), s)
}

// TestWipedNodeRejoinsWithoutBootstrapping: a follower loses its data dir
// and comes back with --peers. It must not bootstrap (it would vote with a
// fresh membership and term); the leader, whose membership lists it,
// catches it up.
func TestWipedNodeRejoinsWithoutBootstrapping(t *testing.T) {
	c := startCluster(t)
	addrs := c.Addrs()
	for k := 1; k <= 20; k++ {
		mustOrderctl(t, addrs, "order", "--customer", "4", "--number", strconv.Itoa(k), "--type", "regular")
	}
	leader := mustLeader(t, c)
	follower := followersOf(c, leader)[0]
	restartEmpty(t, c, follower)
	waitFor(t, 30*time.Second, follower.ID+" to catch up", func() bool {
		out, err := orderctl(t, []string{follower.ClientAddr}, "--json", "get", "--customer", "4", "--consistency", "stale")
		return err == nil && strings.Contains(out, `"order_count": 20`)
	})
	if ids := memberIDs(t, addrs); strings.Join(ids, ",") != "n1,n2,n3" {
		t.Fatalf("members after the rejoin: %v, want n1,n2,n3", ids)
	}
	mustOrderctl(t, []string{follower.ClientAddr}, "order", "--customer", "4", "--number", "21", "--type", "custom")
}

// TestLostDiskDoesNotVote is the Raft disk-loss hazard. Orders are
// committed on the leader and one follower only (the other is paused);
// then the leader dies and the follower that has them loses its disk and
// comes back empty under its old id. If it voted at once, the lagging node
// would win with its vote and the orders would be gone for good. It must
// hold its vote until a leader has caught it up: the cluster stays without
// a leader until the old leader returns, and then has every order.
func TestLostDiskDoesNotVote(t *testing.T) {
	c := startCluster(t)
	leader := mustLeader(t, c)
	var synced, lagging *harness.Node
	for _, n := range c.Nodes {
		switch {
		case n == leader:
		case synced == nil:
			synced = n
		default:
			lagging = n
		}
	}
	if err := lagging.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			lagging.Signal(syscall.SIGCONT) //nolint:errcheck // cleanup
		}
	}()
	mustOrders(t, []string{leader.ClientAddr}, 6, 20)
	for _, n := range []*harness.Node{leader, synced} {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	if err := lagging.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	restartEmptyStopped(t, c, synced)

	// Several election timeouts: with its vote, the lagging node would
	// lead within a second or two.
	time.Sleep(5 * time.Second)
	for _, n := range []*harness.Node{synced, lagging} {
		st, err := harness.Status(context.Background(), n.ClientAddr, certs.Admin())
		if err != nil {
			t.Fatalf("status of %s: %v", n.ID, err)
		}
		if st.Role == "leader" {
			t.Fatalf("%s leads (term %d, last index %d) with the vote of a node that lost its disk", n.ID, st.Term, st.LastIndex)
		}
	}

	// The old leader returns with its data; it is elected and catches the
	// empty node up; every acknowledged order is there.
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		waitFor(t, 30*time.Second, n.ID+" to have every order", func() bool {
			out, err := orderctl(t, []string{n.ClientAddr}, "--json", "get", "--customer", "6", "--consistency", "stale")
			return err == nil && strings.Contains(out, `"order_count": 20`)
		})
	}
	if r := mustGet(t, mustClient(t, c.Addrs()...), 6, wire.Linearizable); r.OrderCount != 20 {
		t.Fatalf("customer 6 has %d orders, want the 20 acknowledged", r.OrderCount)
	}
}

// TestWipedFollowerGetsReady: a follower that lost its disk holds its
// votes until it has caught up; once caught up it must vote again and be
// ready (/readyz) with no election to prompt it. (It stayed unready for
// as long as the leader stayed up: the gate opened only when a vote
// request came; compose's healthcheck found it.)
func TestWipedFollowerGetsReady(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	leader := mustLeader(t, c)
	mustOrders(t, []string{leader.ClientAddr}, 9, 20)
	follower := followersOf(c, leader)[1]
	if err := follower.Kill(); err != nil {
		t.Fatal(err)
	}
	restartEmptyStopped(t, c, follower)
	waitFor(t, 20*time.Second, follower.ID+" ready again after catching up", func() bool {
		code, _ := httpsGet(t, follower.HTTPAddr, "/readyz", "")
		return code == http.StatusOK
	})
	if now := mustLeader(t, c); now.ID != leader.ID {
		t.Fatalf("leadership moved from %s to %s: the test wanted no election", leader.ID, now.ID)
	}
	if b, _ := os.ReadFile(follower.LogPath); !strings.Contains(string(b), "caught up with the leader; this node votes again") {
		t.Fatal("the wiped follower never said it votes again")
	}
}
