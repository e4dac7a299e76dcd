package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestUnknownFaultIsRefused: a faults build given a fault it does not
// know refuses to start and says which it knows, orderd and orderlb
// alike.
func TestUnknownFaultIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		bin  string
		args []string
	}{
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir}},
		{"orderlb", []string{"--insecure", "--backends", "127.0.0.1:1", "--listen", "127.0.0.1:0"}},
	} {
		cmd := exec.Command(filepath.Join(bin, tc.bin), tc.args...)
		cmd.Env = append(os.Environ(), faults.EnvVar+"=melt-the-disk")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "melt-the-disk") || !strings.Contains(string(out), faults.LoseOrders) {
			t.Errorf("%s with an unknown fault: %v\n%s", tc.bin, err, out)
		}
	}
}
