package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// oldReleaseCommit is the last commit whose orderd understands command
// version 1 only: the next one (cf50430) added SetLimits, version 2. The
// upgrade tests run that build, made from this repository's history, as
// etcd's robustness tests build old releases.
const oldReleaseCommit = "119c02958cc9ba470a54705ce6376fa331b7179c"

// oldRelease builds orderd as of oldReleaseCommit, once per test run.
var oldRelease = sync.OnceValues(func() (string, error) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("find the repository (the upgrade tests build an old release from its history): %w", err)
	}
	src := filepath.Join(bin, "old-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	repo := strings.TrimSpace(string(top))
	if exec.Command("git", "-C", repo, "cat-file", "-e", oldReleaseCommit+"^{commit}").Run() != nil {
		// A shallow clone: fetch that one commit from where it came.
		if out, err := exec.Command("git", "-C", repo, "fetch", "--depth=1", "origin", oldReleaseCommit).CombinedOutput(); err != nil {
			return "", fmt.Errorf("commit %s is not in this clone and could not be fetched (clone with history): %v\n%s", oldReleaseCommit, err, out)
		}
	}
	extract := exec.Command("sh", "-c", "git archive --format=tar "+oldReleaseCommit+" | tar -x -C "+src)
	extract.Dir = repo
	if out, err := extract.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v\n%s", oldReleaseCommit, err, out)
	}
	out := filepath.Join(bin, "old", "orderd")
	build := exec.Command("go", "build", "-o", out, "./cmd/orderd")
	build.Dir, build.Env = src, append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly") // exactly what it pinned
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build orderd at %s: %v\n%s", oldReleaseCommit, err, b)
	}
	return out, nil
})

// sessionsMax is a node's session cap as its state machine has it: 0 until
// SetLimits (command version 2) is applied; -1 if the node did not answer
// within 5 s.
func sessionsMax(addr string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := harness.Status(ctx, addr, certs.Admin())
	if err != nil {
		return -1
	}
	for _, s := range st.Stats {
		if s.Name == "sessions_max" {
			return int64(s.Value)
		}
	}
	return 0
}

// restartWith stops n (SIGTERM, as an operator would) and starts it on
// its data dir with orderd binary.
func restartWith(t *testing.T, c *harness.Cluster, n *harness.Node, orderd string) {
	t.Helper()
	if n.Running() {
		if err := n.Terminate(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	n.Orderd = orderd
	if err := c.Start(n); err != nil {
		t.Fatal(err)
	}
}

// upgrade restarts n with orderd and waits until it answers, as an
// operator upgrades one node at a time.
func upgrade(t *testing.T, c *harness.Cluster, n *harness.Node, orderd string) {
	t.Helper()
	restartWith(t, c, n, orderd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFromOldRelease upgrades a running cluster of a real older
// release (command version 1) to this one (version 3) a node at a time:
// while one member is old, a new leader holds its version-2 command
// (SetLimits) and the old node keeps running; once the last is upgraded
// the command commits everywhere. Then one node is rolled back to the old
// release: it stops once, naming the entry and the version it needs,
// refuses at once to start again with that binary (no replay, no restart
// loop), and runs again once upgraded. No order is lost on the way.
func TestUpgradeFromOldRelease(t *testing.T) {
	old, err := oldRelease()
	if err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(prodBin, "orderd")
	c := startClusterWith(t, harness.ClusterConfig{Orderd: old, Extra: []string{"--log-level", "debug"}})
	mustOrders(t, c.Addrs(), 1, 10)

	upgrade(t, c, c.Node("n1"), release)
	upgrade(t, c, c.Node("n2"), release)
	cl := mustClient(t, c.Addrs()...)
	waitFor(t, 30*time.Second, "n1 to lead", func() bool {
		if mustLeader(t, c).ID == "n1" {
			return true
		}
		cl.Admin(context.Background(), wire.TransferLeader{ID: "n1"}) //nolint:errcheck // retried by waitFor
		return false
	})
	n1, n3 := c.Node("n1"), c.Node("n3")
	// The leader tries SetLimits every second: it must hold it each time.
	waitFor(t, 20*time.Second, "the new leader to hold its version-2 command three times", func() bool {
		return logCount(t, n1.LogPath, "n3 understands 1") >= 3
	})
	mustOrders(t, c.Addrs(), 1, 10)
	for _, n := range []*harness.Node{n1, c.Node("n2")} {
		if m := sessionsMax(n.ClientAddr); m != 0 {
			t.Fatalf("%s has SetLimits applied (cap %d, -1: no answer) while n3 understands version 1 only", n.ID, m)
		}
	}
	if !n3.Running() {
		t.Fatal("the old release stopped although the leader held the newer command")
	}

	upgrade(t, c, n3, release)
	waitFor(t, 30*time.Second, "SetLimits applied on every node", func() bool {
		for _, n := range c.Nodes {
			if sessionsMax(n.ClientAddr) <= 0 {
				return false
			}
		}
		return true
	})
	if r := mustGet(t, cl, 1, wire.Linearizable); r.OrderCount != 20 {
		t.Fatalf("after the upgrade customer 1 has %d orders, want 20", r.OrderCount)
	}

	// Rolled back: the old release meets SetLimits in its log.
	restartWith(t, c, n3, old)
	waitFor(t, 30*time.Second, "the old release to stop", func() bool { return !n3.Running() })
	if logCount(t, n3.LogPath, "needs command version 2; this build understands version 1") == 0 {
		t.Fatal("the old release stopped without naming the version it needs")
	}
	if code := n3.ExitCode(); code != 3 {
		t.Fatalf("the old release exited with status %d, want 3 (needs upgrade)", code)
	}
	failures := logCount(t, n3.LogPath, "cannot apply log entry")
	if _, err := os.Stat(filepath.Join(n3.DataDir, "upgrade-required.json")); err != nil {
		t.Fatalf("no upgrade marker: %v", err)
	}
	restartWith(t, c, n3, old)
	waitFor(t, 20*time.Second, "the old release to refuse to start", func() bool { return !n3.Running() })
	if code := n3.ExitCode(); code != 3 {
		t.Fatalf("the old release refused to start with status %d, want 3", code)
	}
	if got := logCount(t, n3.LogPath, "cannot apply log entry"); got != failures {
		t.Fatalf("the restarted old release replayed the log into the same failure (%d failures, was %d)", got, failures)
	}
	if logCount(t, n3.LogPath, "only after upgrading orderd") == 0 {
		t.Fatal("the refusal does not say to upgrade")
	}
	restartWith(t, c, n3, release)
	waitFor(t, 30*time.Second, "the upgraded n3 to apply SetLimits", func() bool { return sessionsMax(n3.ClientAddr) > 0 })
	if r := mustGet(t, mustClient(t, n3.ClientAddr), 1, wire.Stale); r.OrderCount != 20 {
		t.Fatalf("upgraded n3 has %d orders of customer 1, want 20", r.OrderCount)
	}
	// The single-group release's data dirs opened as one shard.
	if l := shardsOf(t, c.Addrs()); len(l.Shards) != 1 || l.Shards[0].Customers != "slots 0-16383" || len(l.Shards[0].Replicas) != 3 {
		t.Fatalf("the upgraded cluster's shards: %+v, want one holding every slot", l)
	}
}
