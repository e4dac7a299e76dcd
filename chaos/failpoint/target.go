package failpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"syscall"
	"time"

	"orderly/harness"
)

// Target is a cluster the nemesis can hurt: local processes (localTarget)
// or the Docker compose cluster (dockerTarget).
type Target interface {
	Nodes() []string // node ids
	RaftAddr(id string) string
	ClientAddrs() []string
	Balancer() string
	LegacyAddr() string                // the balancer's seed-protocol port
	Leader(ctx context.Context) string // id of the node that leads, "" if none answers
	Kill(id string) error
	Restart(id string) error
	Pause(id string) error
	Resume(id string) error
	Cut(id string) error // isolate the node from the other nodes, both ways
	Heal(id string) error
	Wipe(id string) error    // SIGKILL the node and delete its data (a lost disk)
	Rebuild(id string) error // start a wiped node again, empty, with its usual flags
	ClientAddr(id string) string
	HealAll() error // resume, restart and reconnect everything; wait for a leader
	// slowDisk makes the node's log writes stall 20-200 ms each, or ends
	// it (SIGUSR1/SIGUSR2 to a -tags faults build).
	SlowDisk(id string, on bool) error
	FillDisk(id string) error // fill the filesystem under the node's data dir
	FreeDisk(id string) error // undo fillDisk
	// TLS is an admin client's, for client.Options.TLS and
	// harness.Status: nil when the cluster runs --insecure.
	TLS() func(string) *tls.Config
}

// Local is a target of processes on this machine: c's nodes, lb in front
// of them; partitions need net.
func Local(c *harness.Cluster, net *harness.Net, lb *harness.Balancer) Target {
	return &localTarget{c: c, net: net, lb: lb}
}

// Docker is a target of the compose cluster c.
func Docker(c *harness.Compose) Target { return &dockerTarget{c: c} }

// localTarget is processes on this machine; partitions need its Net.
type localTarget struct {
	c   *harness.Cluster
	net *harness.Net
	lb  *harness.Balancer
}

func (l *localTarget) Nodes() []string {
	var ids []string
	for _, n := range l.c.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

func (l *localTarget) TLS() func(string) *tls.Config { return l.c.ClientTLS() }

func (l *localTarget) RaftAddr(id string) string { return l.c.Node(id).RaftAddr }
func (l *localTarget) ClientAddrs() []string     { return l.c.Addrs() }
func (l *localTarget) Balancer() string          { return l.lb.Addr }
func (l *localTarget) LegacyAddr() string        { return l.lb.LegacyAddr }

func (l *localTarget) Leader(ctx context.Context) string {
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if n, err := l.c.WaitLeader(lctx); err == nil {
		return n.ID
	}
	return ""
}

func (l *localTarget) Kill(id string) error    { return l.c.Node(id).Kill() }
func (l *localTarget) Restart(id string) error { return l.c.Start(l.c.Node(id)) }
func (l *localTarget) Pause(id string) error   { return l.c.Node(id).Signal(syscall.SIGSTOP) }
func (l *localTarget) Resume(id string) error  { return l.c.Node(id).Signal(syscall.SIGCONT) }

func (l *localTarget) Cut(id string) error {
	if l.net == nil {
		return errors.New("partition needs network namespaces")
	}
	return l.net.CutRaft(l.c.Node(id).Index)
}

func (l *localTarget) Heal(id string) error {
	if l.net == nil {
		return nil
	}
	return l.net.Heal(l.c.Node(id).Index)
}

func (l *localTarget) HealAll() error { return l.c.HealAll(l.net) }

func (l *localTarget) Wipe(id string) error { return l.c.Node(id).Wipe() }

func (l *localTarget) Rebuild(id string) error { return l.Restart(id) }

func (l *localTarget) SlowDisk(id string, on bool) error {
	if on {
		return l.c.Node(id).Signal(syscall.SIGUSR1)
	}
	return l.c.Node(id).Signal(syscall.SIGUSR2)
}

func (l *localTarget) FillDisk(id string) error    { return l.c.Node(id).FillDisk() }
func (l *localTarget) FreeDisk(id string) error    { return l.c.Node(id).FreeDisk() }
func (l *localTarget) ClientAddr(id string) string { return l.c.Node(id).ClientAddr }

// dockerTarget is the compose cluster: docker kill/start, pause/unpause,
// and network disconnect/connect (which cuts a node off from clients too).
type dockerTarget struct {
	c *harness.Compose
}

func (d *dockerTarget) Nodes() []string { return d.c.Nodes() }

func (d *dockerTarget) RaftAddr(id string) string {
	return fmt.Sprintf("%s:%d", d.c.IP(id), harness.RaftPort)
}

func (d *dockerTarget) ClientAddrs() []string {
	var out []string
	for _, id := range d.c.Nodes() {
		out = append(out, d.c.ClientAddr(id))
	}
	return out
}

func (d *dockerTarget) TLS() func(string) *tls.Config { return d.c.ClientTLS() }

func (d *dockerTarget) Balancer() string   { return d.c.LBAddr }
func (d *dockerTarget) LegacyAddr() string { return d.c.LegacyAddr }

func (d *dockerTarget) Leader(ctx context.Context) string {
	for _, id := range d.c.Nodes() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := harness.Status(sctx, d.c.ClientAddr(id), d.TLS())
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

func (d *dockerTarget) Kill(id string) error    { return d.do(id, "kill") }
func (d *dockerTarget) Restart(id string) error { return d.do(id, "start") }
func (d *dockerTarget) Pause(id string) error   { return d.do(id, "pause") }
func (d *dockerTarget) Resume(id string) error  { return d.do(id, "unpause") }
func (d *dockerTarget) Cut(id string) error     { return d.do(id, "network", "disconnect", d.c.Network()) }
func (d *dockerTarget) Heal(id string) error {
	return d.do(id, "network", "connect", "--ip", d.c.IP(id), d.c.Network())
}

// wipe removes the node's container and its volume.
func (d *dockerTarget) Wipe(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.c.Run(ctx, "rm", "-f", "-s", id); err != nil {
		return err
	}
	_, err := d.c.Docker(ctx, "volume", "rm", d.c.Volume(id))
	return err
}

// rebuild creates the node's container again, on a new empty volume.
func (d *dockerTarget) Rebuild(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.c.Run(ctx, "up", "-d", "--no-deps", id)
	return err
}

func (d *dockerTarget) ClientAddr(id string) string { return d.c.ClientAddr(id) }

// ErrNotInDocker: the release image has no fault switches and its volumes
// are the host's disk.
var ErrNotInDocker = errors.New("not available against the compose cluster")

func (d *dockerTarget) SlowDisk(string, bool) error { return ErrNotInDocker }
func (d *dockerTarget) FillDisk(string) error       { return ErrNotInDocker }
func (d *dockerTarget) FreeDisk(string) error       { return ErrNotInDocker }

// healAll undoes every fault; each step may find nothing to undo.
func (d *dockerTarget) HealAll() error {
	for _, id := range d.c.Nodes() {
		if _, err := d.c.Container(context.Background(), id); err != nil {
			d.Rebuild(id) //nolint:errcheck // WaitLeader below says if it matters
		}
		d.Resume(id)  //nolint:errcheck // not paused: fine
		d.Restart(id) //nolint:errcheck // running: a no-op
		d.Heal(id)    //nolint:errcheck // connected: "already exists"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.c.WaitLeader(ctx, ""); err != nil {
		return fmt.Errorf("after healing: %w", err)
	}
	return nil
}
