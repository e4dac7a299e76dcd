package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderly/faults"
	"orderly/harness"
	"orderly/wire"
)

// startMixed starts n1 and n2 as faults builds (command version 3) whose
// leader proposes a version-3 command twice a second (fault), and n3 as a
// release build (version 2); n1 or n2 leads.
func startMixed(t *testing.T, fault string) (*harness.Cluster, *harness.Node) {
	t.Helper()
	c, err := harness.StartCluster(harness.ClusterConfig{Certs: certs, Orderd: filepath.Join(bin, "orderd"), Dir: t.TempDir(),
		NodeSetup: func(n *harness.Node) {
			if n.ID == "n3" {
				n.Orderd = filepath.Join(prodBin, "orderd")
				return
			}
			n.Env = []string{faults.EnvVar + "=" + fault}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, n := range c.Nodes {
				if b, err := os.ReadFile(n.LogPath); err == nil {
					t.Logf("---- %s ----\n%s", n.ID, tail(b, 3000))
				}
			}
		}
	})
	cl := mustClient(t, c.Addrs()...)
	waitFor(t, 30*time.Second, "n1 or n2 to lead", func() bool {
		if l := mustLeader(t, c); l.ID != "n3" {
			return true
		}
		cl.Admin(context.Background(), wire.TransferLeader{ID: "n1"}) //nolint:errcheck // retried by waitFor
		return false
	})
	return c, c.Node("n3")
}

// testMarks is a node's count of applied version-3 commands (-1: no answer).
func testMarks(addr string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := harness.Status(ctx, addr, certs.Admin())
	if err != nil {
		return -1
	}
	for _, s := range st.Stats {
		if s.Name == "test_marks" {
			return int64(s.Value)
		}
	}
	return 0
}

// TestRollingUpgradeWaitsForEveryMember: while one member runs a release
// that understands version 2, the leader holds its version-3 command and
// the old node keeps running; once that node is upgraded and publishes
// version 3, the command is committed and applied everywhere.
func TestRollingUpgradeWaitsForEveryMember(t *testing.T) {
	c, n3 := startMixed(t, faults.ProposeV2)
	mustOrders(t, c.Addrs(), 1, 10)
	leader := mustLeader(t, c)
	waitFor(t, 10*time.Second, "the leader to hold its version-3 command", func() bool {
		return logCount(t, leader.LogPath, "n3 understands 2") > 0
	})
	for _, n := range c.Nodes {
		if m := testMarks(n.ClientAddr); m != 0 && n.ID != "n3" {
			t.Fatalf("%s applied %d version-3 commands while n3 understands version 2", n.ID, m)
		}
	}
	if !n3.Running() {
		t.Fatal("the release node stopped although the leader held the newer command")
	}

	// Upgrade n3 in place: same data dir, the newer build.
	if err := n3.Kill(); err != nil {
		t.Fatal(err)
	}
	n3.Orderd, n3.Env = filepath.Join(bin, "orderd"), []string{faults.EnvVar + "=" + faults.ProposeV2}
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "version-3 commands applied on every node", func() bool {
		for _, n := range c.Nodes {
			if testMarks(n.ClientAddr) <= 0 {
				return false
			}
		}
		return true
	})
	if r := mustGet(t, mustClient(t, c.Addrs()...), 1, wire.Linearizable); r.OrderCount != 10 {
		t.Fatalf("after the upgrade customer 1 has %d orders, want 10", r.OrderCount)
	}
}

// TestOldNodeStopsOnceOnNewerCommand: a leader without the gate commits a
// version-3 command; the release node stops with a message naming the
// entry and the version, refuses at once to start again with the same
// binary (no replay, no restart loop), and runs again once upgraded.
func TestOldNodeStopsOnceOnNewerCommand(t *testing.T) {
	c, n3 := startMixed(t, faults.ProposeV2Ungated)
	mustOrders(t, c.Addrs(), 1, 10)
	waitFor(t, 30*time.Second, "n3 to stop", func() bool { return !n3.Running() })
	if logCount(t, n3.LogPath, "needs command version 3; this build understands version 2") == 0 {
		t.Fatal("n3 stopped without naming the version it needs")
	}
	applyFailures := logCount(t, n3.LogPath, "cannot apply log entry")
	if _, err := os.Stat(filepath.Join(n3.DataDir, "upgrade-required.json")); err != nil {
		t.Fatalf("no upgrade marker: %v", err)
	}

	// The same release again: refused before Raft starts.
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the release build to refuse to start", func() bool { return !n3.Running() })
	if got := logCount(t, n3.LogPath, "cannot apply log entry"); got != applyFailures {
		t.Fatalf("the restarted release replayed the log into the same failure (%d failures, was %d)", got, applyFailures)
	}
	if logCount(t, n3.LogPath, "only after upgrading orderd") == 0 {
		t.Fatal("the refusal does not say to upgrade")
	}

	// Upgraded: it starts, applies the entry and catches up.
	n3.Orderd = filepath.Join(bin, "orderd")
	if err := c.Start(n3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the upgraded n3 to apply version-3 commands", func() bool { return testMarks(n3.ClientAddr) > 0 })
	if r := mustGet(t, mustClient(t, n3.ClientAddr), 1, wire.Stale); r.OrderCount != 10 {
		t.Fatalf("upgraded n3 has %d orders of customer 1, want 10", r.OrderCount)
	}
}
