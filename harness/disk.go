package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// fillerFile is what the disk-full nemesis writes into a node's data dir.
const fillerFile = "chaos-disk-filler"

// mountTmpfs mounts a tmpfs of size (mount's syntax: "256m") on dir, so a
// node's data dir can be filled up without filling the machine's disk.
func mountTmpfs(dir, size string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount a %s tmpfs on %s for the disk-full nemesis (needs root): %v %s",
			size, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func unmount(dir string) error {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("umount %s: %v %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fillDisk writes zeros into dir until its filesystem is full.
func fillDisk(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, fillerFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("fill %s: %w", dir, err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("fill %s: %w", dir, err)
		}
	}
}

// freeDisk removes what fillDisk wrote.
func freeDisk(dir string) error {
	if err := os.Remove(filepath.Join(dir, fillerFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("free %s: %w", dir, err)
	}
	return nil
}

// emptyDir deletes everything in dir but dir itself, which may be a mount
// point.
func emptyDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// FillDisk fills the filesystem under the node's data dir (a tmpfs of
// ClusterConfig.DataDirSize).
func (n *Node) FillDisk() error {
	if !n.mounted {
		return errors.New("filling a disk needs the data dirs on tmpfs (ClusterConfig.DataDirSize)")
	}
	return fillDisk(n.DataDir)
}

// FreeDisk removes what FillDisk wrote.
func (n *Node) FreeDisk() error { return freeDisk(n.DataDir) }

// Wipe SIGKILLs the node and deletes its data (a lost disk); the data dir
// itself stays, as it may be a mount point.
func (n *Node) Wipe() error {
	if err := n.Kill(); err != nil {
		return err
	}
	return emptyDir(n.DataDir)
}
