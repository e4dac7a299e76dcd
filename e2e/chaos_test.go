package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"orderly/chaos"
	"orderly/chaos/failpoint"
	"orderly/chaos/report"
	"orderly/chaos/traffic"
	"orderly/chaos/validate"
	"orderly/faults"
)

// progressCheck is the name of chaos's verdict on work done.
const progressCheck = "progress: work done, and after every fault"

func runChaos(t *testing.T, opt chaos.Options) *report.Report {
	t.Helper()
	opt.BinDir = bin
	opt.ReportDir = filepath.Join(t.TempDir(), "report")
	opt.Logf = t.Logf
	t.Cleanup(func() { // the report and the processes' logs outlive a failed run
		if t.Failed() {
			keep := filepath.Join(artifactDir(t), strings.ReplaceAll(t.Name(), "/", "-"))
			if err := keepReport(opt.ReportDir, keep); err != nil {
				t.Logf("keep the chaos report: %v", err)
			} else {
				t.Logf("chaos report and logs kept in %s", keep)
			}
		}
	})
	rep, err := chaos.Run(context.Background(), opt)
	if err != nil {
		t.Fatalf("chaos run: %v", err)
	}
	if md, err := os.ReadFile(filepath.Join(opt.ReportDir, "summary.md")); err == nil {
		t.Logf("summary:\n%s", md)
	}
	return rep
}

// keepReport copies a chaos report's files and the processes' logs (not
// the data dirs) from dir to keep.
func keepReport(dir, keep string) error {
	os.RemoveAll(keep)
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !slices.Contains([]string{".log", ".md", ".html", ".png", ".csv", ".json"}, filepath.Ext(path)) || strings.Contains(path, "data") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(keep, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(keep, rel), b, 0o644)
	})
}

// TestChaosShort is the short chaos run of `make test`: a fixed seed,
// every nemesis injected at least once, high load in the middle half.
// Every check must pass.
func TestChaosShort(t *testing.T) {
	kinds := failpoint.AllNemeses
	rep := runChaos(t, chaos.Options{Duration: 100 * time.Second, Seed: 20261201, Nemeses: kinds, Load: traffic.LoadMixed})
	for _, k := range kinds {
		if !slices.ContainsFunc(rep.Faults, func(f failpoint.Fault) bool { return f.Kind == k && f.Err == "" }) {
			t.Errorf("nemesis %s was never injected", k)
		}
	}
	if !rep.Pass() {
		t.Fatalf("chaos checks failed: %+v", rep.Verdicts)
	}
}

// TestChaosCheckerCatchesFaults runs the same harness against nodes broken
// on purpose, one fault per check, and asserts the check reports it. A
// checker that cannot fail proves nothing.
func TestChaosCheckerCatchesFaults(t *testing.T) {
	cases := []struct {
		fault, check string
		shards       int // the cluster's --shards (0: one group)
	}{
		{faults.StaleReads, "linearizable (porcupine, per customer)", 0},
		{faults.LoseOrders, "acknowledged orders lost", 0},
		{faults.ForgetSessions, "orders applied twice", 0},
		{faults.SessionIgnoresIndex, "session reads: read-your-writes and monotonic", 0},
		// The balancer answers linearizable reads from its cache without
		// waiting for its feed to reach the read index: of one group, and
		// of a sharded cluster (a feed and a read index per shard).
		{faults.BalancerSkipsFeedWait, "linearizable (porcupine, per customer)", 0},
		{faults.BalancerSkipsFeedWait, "linearizable (porcupine, per customer)", 3},
		// The cluster refuses every write: nothing lost, nothing doubled.
		{faults.RefuseWrites, progressCheck, 0},
		// The nemesis never heals: a node never recovers after its fault.
		{"never-heal", progressCheck, 0},
	}
	for _, tc := range cases {
		name := tc.fault
		if tc.shards > 1 {
			name += fmt.Sprintf("-%d-shards", tc.shards)
		}
		t.Run(name, func(t *testing.T) {
			opt := chaos.Options{Duration: 12 * time.Second, Seed: 3, Nemeses: []string{failpoint.Partition}, Fault: tc.fault}
			if tc.shards > 1 {
				opt.Shards, opt.Replicas, opt.Customers = tc.shards, 3, 9 // customers of every shard
			}
			if tc.fault == "never-heal" {
				opt.Fault, opt.SkipHeal, opt.Nemeses, opt.RecoverWithin = "", true, []string{failpoint.KillAny}, 3*time.Second
			}
			rep := runChaos(t, opt)
			i := slices.IndexFunc(rep.Verdicts, func(v validate.Verdict) bool { return v.Name == tc.check })
			if i < 0 {
				t.Fatalf("no verdict named %q", tc.check)
			}
			if rep.Verdicts[i].Pass {
				t.Fatalf("fault %s went unnoticed by %q: %s", tc.fault, tc.check, rep.Verdicts[i].Detail)
			}
			t.Logf("%s caught it: %s", tc.check, rep.Verdicts[i].Detail)
		})
	}
}

// TestChaosShardMoves: a 4-node cluster of 3 shards (3 replicas each)
// under load while replicas move back to back, shards are balanced, and
// nodes are killed and paused: every history stays linearizable per
// customer, nothing acknowledged is lost or applied twice.
func TestChaosShardMoves(t *testing.T) {
	kinds := []string{failpoint.Move, failpoint.KillAny, failpoint.Balance, failpoint.Pause, failpoint.KillLeader}
	rep := runChaos(t, chaos.Options{Duration: 60 * time.Second, Seed: 20261207, Nemeses: kinds, Nodes: 4, Shards: 3, Replicas: 3,
		Customers: 9}) // customers of every shard
	for _, k := range []string{failpoint.Move, failpoint.Balance} {
		if !slices.ContainsFunc(rep.Faults, func(f failpoint.Fault) bool { return f.Kind == k && f.Err == "" }) {
			t.Errorf("nemesis %s never ran without an error", k)
		}
	}
	if !rep.Pass() {
		t.Fatalf("chaos checks failed: %+v", rep.Verdicts)
	}
}
