package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// cpuGroups holds each node in a cgroup of its own with a CPU quota:
// cgroup v2 (cpu.max) where the unified hierarchy is mounted, else v1's
// cpu controller (cpu.cfs_quota_us).
type cpuGroups struct {
	root  string // this run's parent group
	v2    bool
	quota float64
	made  []string
}

// periodOf is the scheduling period for quota: 10 ms slices, so that a
// node is never frozen for long (Docker's 100 ms default put 70 ms p99s
// on every point), but a quota of at least 1 ms, the kernel's least.
func periodOf(quota float64) int {
	return max(10000, int(1000/quota)+1)
}

func newCPUGroups(name string, quota float64) (*cpuGroups, error) {
	g := &cpuGroups{quota: quota}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		g.v2, g.root = true, filepath.Join("/sys/fs/cgroup", name)
	} else {
		g.root = filepath.Join("/sys/fs/cgroup/cpu", name)
	}
	if err := os.Mkdir(g.root, 0o755); err != nil {
		return nil, fmt.Errorf("make cgroup %s (needs root and a cpu controller): %w", g.root, err)
	}
	if g.v2 {
		if err := os.WriteFile(filepath.Join(g.root, "cgroup.subtree_control"), []byte("+cpu"), 0o644); err != nil {
			os.Remove(g.root)
			return nil, fmt.Errorf("enable the cpu controller under %s: %w", g.root, err)
		}
	}
	return g, nil
}

// add puts pid in a group of its own under the quota.
func (g *cpuGroups) add(name string, pid int) error {
	dir := filepath.Join(g.root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("make cgroup %s: %w", dir, err)
	}
	g.made = append(g.made, dir)
	period := periodOf(g.quota)
	us := strconv.Itoa(int(g.quota * float64(period)))
	var err error
	if g.v2 {
		err = os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(us+" "+strconv.Itoa(period)), 0o644)
	} else {
		err = errors.Join(os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(period)), 0o644),
			os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(us), 0o644))
	}
	if err != nil {
		return fmt.Errorf("set the quota of %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("put pid %d in %s: %w", pid, dir, err)
	}
	return nil
}

// remove deletes the groups (their processes have exited: the cluster is
// stopped first).
func (g *cpuGroups) remove() {
	for i := len(g.made) - 1; i >= 0; i-- {
		os.Remove(g.made[i])
	}
	os.Remove(g.root)
}
