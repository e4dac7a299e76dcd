package e2e

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"orderly/wire"
)

// TestSnapshotsAtTheInterval: every shard's replica on every node
// snapshots once its log passes --snapshot-threshold, within
// --snapshot-interval (a node restarted more often than hashicorp/raft's
// default 120 s check once went a 30-minute chaos run without one, and
// its log and its time to start grew with the run). A SIGKILL of every
// node then restores each replica from its snapshot and loses nothing.
func TestSnapshotsAtTheInterval(t *testing.T) {
	c := startCluster(t, "--shards", "3", "--snapshot-threshold", "64", "--snapshot-interval", "200ms")
	cl := mustClient(t, c.Addrs()...)
	const customers, orders = 30, 20
	for cust := int32(1); cust <= customers; cust++ {
		mustOrdersWith(t, cl, cust, orders)
	}
	waitFor(t, 10*time.Second, "a snapshot of every shard on every node", func() bool {
		for _, n := range c.Nodes {
			for shard := range 3 {
				got, _ := filepath.Glob(filepath.Join(n.DataDir, "shards", strconv.Itoa(shard), "snapshots", "*", "state.bin"))
				if len(got) == 0 {
					return false
				}
			}
		}
		return true
	})
	restartAll(t, c)
	for cust := int32(1); cust <= customers; cust++ {
		if r := mustGet(t, cl, cust, wire.Linearizable); r.OrderCount != orders {
			t.Fatalf("customer %d has %d orders after restoring from snapshots, %d acknowledged", cust, r.OrderCount, orders)
		}
	}
}
