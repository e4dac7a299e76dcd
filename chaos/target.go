package chaos

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// target is a cluster the nemesis can hurt: local processes (localTarget)
// or the Docker compose cluster (dockerTarget).
type target interface {
	nodes() []string // node ids
	raftAddr(id string) string
	clientAddrs() []string
	balancer() string
	legacyAddr() string                // the balancer's seed-protocol port
	leader(ctx context.Context) string // id of the node that leads, "" if none answers
	kill(id string) error
	restart(id string) error
	pause(id string) error
	resume(id string) error
	cut(id string) error // isolate the node from the other nodes, both ways
	heal(id string) error
	wipe(id string) error    // SIGKILL the node and delete its data (a lost disk)
	rebuild(id string) error // start a wiped node again, empty, with its usual flags
	clientAddr(id string) string
	healAll() error // resume, restart and reconnect everything; wait for a leader
	// slowDisk makes the node's log writes stall 20-200 ms each, or ends
	// it (SIGUSR1/SIGUSR2 to a -tags faults build).
	slowDisk(id string, on bool) error
	fillDisk(id string) error // fill the filesystem under the node's data dir
	freeDisk(id string) error // undo fillDisk
}

// localTarget is processes on this machine; partitions need its Net.
type localTarget struct {
	c   *Cluster
	net *Net
	lb  *Balancer
}

func (l *localTarget) nodes() []string {
	var ids []string
	for _, n := range l.c.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

func (l *localTarget) raftAddr(id string) string { return l.c.Node(id).RaftAddr }
func (l *localTarget) clientAddrs() []string     { return l.c.Addrs() }
func (l *localTarget) balancer() string          { return l.lb.Addr }
func (l *localTarget) legacyAddr() string        { return l.lb.LegacyAddr }

func (l *localTarget) leader(ctx context.Context) string {
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if n, err := l.c.WaitLeader(lctx); err == nil {
		return n.ID
	}
	return ""
}

func (l *localTarget) kill(id string) error    { return l.c.Node(id).Kill() }
func (l *localTarget) restart(id string) error { return l.c.Start(l.c.Node(id)) }
func (l *localTarget) pause(id string) error   { return l.c.Node(id).Signal(syscall.SIGSTOP) }
func (l *localTarget) resume(id string) error  { return l.c.Node(id).Signal(syscall.SIGCONT) }

func (l *localTarget) cut(id string) error {
	if l.net == nil {
		return errors.New("partition needs network namespaces")
	}
	return l.net.CutRaft(l.c.Node(id).Index)
}

func (l *localTarget) heal(id string) error {
	if l.net == nil {
		return nil
	}
	return l.net.Heal(l.c.Node(id).Index)
}

func (l *localTarget) healAll() error { return healAll(l.c, l.net) }

func (l *localTarget) wipe(id string) error {
	n := l.c.Node(id)
	if err := n.Kill(); err != nil {
		return err
	}
	return emptyDir(n.DataDir) // it may be a mount point
}

func (l *localTarget) rebuild(id string) error { return l.restart(id) }

func (l *localTarget) slowDisk(id string, on bool) error {
	if on {
		return l.c.Node(id).Signal(syscall.SIGUSR1)
	}
	return l.c.Node(id).Signal(syscall.SIGUSR2)
}

func (l *localTarget) fillDisk(id string) error {
	n := l.c.Node(id)
	if !n.mounted {
		return errors.New("disk-full needs the data dirs on tmpfs (ClusterConfig.DataDirSize)")
	}
	return fillDisk(n.DataDir)
}

func (l *localTarget) freeDisk(id string) error    { return freeDisk(l.c.Node(id).DataDir) }
func (l *localTarget) clientAddr(id string) string { return l.c.Node(id).ClientAddr }

// dockerTarget is the compose cluster: docker kill/start, pause/unpause,
// and network disconnect/connect (which cuts a node off from clients too).
type dockerTarget struct {
	c *Compose
}

func (d *dockerTarget) nodes() []string { return d.c.Nodes() }

func (d *dockerTarget) raftAddr(id string) string { return fmt.Sprintf("%s:%d", d.c.IP(id), RaftPort) }

func (d *dockerTarget) clientAddrs() []string {
	var out []string
	for _, id := range d.c.Nodes() {
		out = append(out, d.c.ClientAddr(id))
	}
	return out
}

func (d *dockerTarget) balancer() string   { return d.c.LBAddr }
func (d *dockerTarget) legacyAddr() string { return d.c.LegacyAddr }

func (d *dockerTarget) leader(ctx context.Context) string {
	for _, id := range d.c.Nodes() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := Status(sctx, d.c.ClientAddr(id))
		cancel()
		if err == nil && s.Role == "leader" {
			return id
		}
	}
	return ""
}

func (d *dockerTarget) do(id string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return d.c.DockerOn(ctx, id, args...)
}

func (d *dockerTarget) kill(id string) error    { return d.do(id, "kill") }
func (d *dockerTarget) restart(id string) error { return d.do(id, "start") }
func (d *dockerTarget) pause(id string) error   { return d.do(id, "pause") }
func (d *dockerTarget) resume(id string) error  { return d.do(id, "unpause") }
func (d *dockerTarget) cut(id string) error     { return d.do(id, "network", "disconnect", d.c.Network()) }
func (d *dockerTarget) heal(id string) error {
	return d.do(id, "network", "connect", "--ip", d.c.IP(id), d.c.Network())
}

// wipe removes the node's container and its volume.
func (d *dockerTarget) wipe(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.c.Run(ctx, "rm", "-f", "-s", id); err != nil {
		return err
	}
	_, err := d.c.Docker(ctx, "volume", "rm", d.c.Volume(id))
	return err
}

// rebuild creates the node's container again, on a new empty volume.
func (d *dockerTarget) rebuild(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.c.Run(ctx, "up", "-d", "--no-deps", id)
	return err
}

func (d *dockerTarget) clientAddr(id string) string { return d.c.ClientAddr(id) }

// errNotInDocker: the release image has no fault switches and its volumes
// are the host's disk.
var errNotInDocker = errors.New("not available against the compose cluster")

func (d *dockerTarget) slowDisk(string, bool) error { return errNotInDocker }
func (d *dockerTarget) fillDisk(string) error       { return errNotInDocker }
func (d *dockerTarget) freeDisk(string) error       { return errNotInDocker }

// healAll undoes every fault; each step may find nothing to undo.
func (d *dockerTarget) healAll() error {
	for _, id := range d.c.Nodes() {
		if _, err := d.c.Container(context.Background(), id); err != nil {
			d.rebuild(id) //nolint:errcheck // WaitLeader below says if it matters
		}
		d.resume(id)  //nolint:errcheck // not paused: fine
		d.restart(id) //nolint:errcheck // running: a no-op
		d.heal(id)    //nolint:errcheck // connected: "already exists"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.c.WaitLeader(ctx, ""); err != nil {
		return fmt.Errorf("after healing: %w", err)
	}
	return nil
}
