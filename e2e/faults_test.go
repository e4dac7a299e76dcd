package e2e

import (
	"path/filepath"
	"testing"

	"orderly/faults"
	"orderly/harness"
	"orderly/wire"
)

// TestDefaultBuildHasNoFaultSwitch: a release binary ignores
// $ORDERLY_TEST_FAULT. With lose-orders honoured, every fifth order would
// be acknowledged and not recorded; the faults build shows the switch is
// real (it logs the fault at start).
func TestDefaultBuildHasNoFaultSwitch(t *testing.T) {
	for _, tc := range []struct {
		name, bin string
		broken    bool
	}{{"default build", prodBin, false}, {"faults build", bin, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := harness.StartCluster(harness.ClusterConfig{Certs: certs, Orderd: filepath.Join(tc.bin, "orderd"), Dir: t.TempDir(),
				Env: []string{faults.EnvVar + "=" + faults.LoseOrders}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			mustLeader(t, c)
			mustOrders(t, c.Addrs(), 1, 20)
			rec := mustGet(t, mustClient(t, c.Addrs()...), 1, wire.Linearizable)
			warned := logCount(t, c.Nodes[0].LogPath, "TEST FAULT ACTIVE")
			if tc.broken {
				if rec.OrderCount == 20 || warned == 0 {
					t.Fatalf("faults build: %d of 20 orders recorded, %d warnings: the switch did nothing", rec.OrderCount, warned)
				}
				return
			}
			if rec.OrderCount != 20 || warned != 0 {
				t.Fatalf("default build: %d of 20 orders recorded, %d fault warnings in the log", rec.OrderCount, warned)
			}
		})
	}
}
