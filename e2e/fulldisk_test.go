package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// TestFullDiskLosesNothing: the leader's data dir fills up (a 1.5 MB
// tmpfs). It must say so clearly in its log, the cluster must go on under
// another leader, and every acknowledged order must be there.
func TestFullDiskLosesNothing(t *testing.T) {
	dir := t.TempDir()
	n1 := filepath.Join(dir, "n1")
	if err := os.MkdirAll(n1, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", n1).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("SKIPPED %s: cannot mount a small tmpfs (needs root): %v %s", t.Name(), err, strings.TrimSpace(string(out)))
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	c, err := harness.StartCluster(harness.ClusterConfig{Certs: certs, Orderd: filepath.Join(bin, "orderd"), Dir: dir})
	if err != nil {
		exec.Command("umount", n1).Run()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if out, err := exec.Command("umount", n1).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", n1, err, out)
		}
	})
	// n1 must lead, so that its full disk hits the write path.
	cl := mustClient(t, c.Addrs()...)
	waitFor(t, 30*time.Second, "n1 to lead", func() bool {
		l := mustLeader(t, c)
		if l.ID == "n1" {
			return true
		}
		cl.Admin(context.Background(), wire.TransferLeader{ID: "n1"}) //nolint:errcheck // retried by waitFor
		return false
	})
	acked := map[int32]uint64{}
	full := func() bool {
		b, _ := os.ReadFile(c.Node("n1").LogPath)
		return strings.Contains(string(b), "no space left on device")
	}
	order := func(k int32) {
		for cust := range int32(8) {
			if _, err := cl.Order(context.Background(), cust, k, wire.Regular); err != nil {
				t.Fatalf("order %d/%d with a full disk on n1: %v", cust, k, err)
			}
			acked[cust]++
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	k := int32(1)
	for ; !full(); k++ { // until n1 runs out of space
		if time.Now().After(deadline) {
			t.Fatalf("n1's disk never filled (%d orders per customer)", k)
		}
		order(k)
	}
	for end := k + 50; k < end; k++ { // and on, under the next leader
		order(k)
	}
	leader := mustLeader(t, c)
	if leader.ID == "n1" {
		t.Fatal("n1 still leads with a full disk")
	}
	for cust, n := range acked {
		if r := mustGet(t, cl, cust, wire.Linearizable); r.OrderCount != n {
			t.Fatalf("customer %d has %d orders, %d acknowledged", cust, r.OrderCount, n)
		}
	}
	t.Logf("n1's disk filled; %s leads; %d orders per customer all there", leader.ID, acked[0])
}
