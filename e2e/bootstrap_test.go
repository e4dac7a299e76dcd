package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"orderly/chaos"
)

// notBootstrapping is what a node with an empty data dir and --peers logs
// when it finds that the cluster already exists.
const notBootstrapping = "not bootstrapping: the cluster exists"

// restartEmpty kills a node, deletes its data dir and starts it again with
// its usual flags, --peers included: a replaced disk, or `docker compose
// up` after a volume was lost. It returns once the node has logged that it
// will not bootstrap.
func restartEmpty(t *testing.T, c *chaos.Cluster, n *chaos.Node) {
	t.Helper()
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	restartEmptyStopped(t, c, n)
}

// restartEmptyStopped is restartEmpty for a node already stopped.
func restartEmptyStopped(t *testing.T, c *chaos.Cluster, n *chaos.Node) {
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
	var follower *chaos.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
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
