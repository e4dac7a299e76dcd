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

	"orderly/chaos"
	"orderly/chaos/failpoint"
	"orderly/client"
	"orderly/harness"
	"orderly/wire"
)

// composeFile is deploy/compose.yaml, seen from this package.
var composeFile = filepath.Join("..", "deploy", "compose.yaml")

// dockerOrSkip skips the test, saying why where `go test` without -v
// shows it too, when Docker cannot be used here.
func dockerOrSkip(t *testing.T) {
	t.Helper()
	if err := harness.DockerAvailable(); err != nil {
		msg := fmt.Sprintf("SKIPPED %s: %v", t.Name(), err)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

// buildImage builds the image as `make docker` does, under a tag of the
// test's own, and removes it when the test ends.
func buildImage(t *testing.T, ctx context.Context) string {
	t.Helper()
	began := time.Now()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+string(os.PathSeparator),
		"orderly/cmd/orderd", "orderly/cmd/orderlb", "orderly/cmd/orderctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	image := fmt.Sprintf("orderly:test-%d", time.Now().UnixNano())
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", image, "-f", filepath.Join("..", "deploy", "Dockerfile"), dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() }) //nolint:errcheck // best effort
	t.Logf("image %s built in %v", image, time.Since(began).Round(time.Millisecond))
	return image
}

// dockerEnv is one compose project under test and what was acknowledged.
type dockerEnv struct {
	t     *testing.T
	ctx   context.Context
	c     *harness.Compose
	cl    *client.Client
	acked map[int32]uint64
}

func (d *dockerEnv) compose(args ...string) {
	d.t.Helper()
	if _, err := d.c.Run(d.ctx, args...); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dockerEnv) docker(service string, args ...string) {
	d.t.Helper()
	if err := d.c.DockerOn(d.ctx, service, args...); err != nil {
		d.t.Fatal(err)
	}
}

// waitHealthy waits until docker calls every service healthy: its
// compose healthcheck (orderctl health: /readyz of the side port) passes.
func (d *dockerEnv) waitHealthy(when string) {
	d.t.Helper()
	waitFor(d.t, 60*time.Second, "every service healthy "+when, func() bool {
		for _, svc := range append(d.c.Nodes(), "lb") {
			id, err := d.c.Container(d.ctx, svc)
			if err != nil {
				return false
			}
			out, err := d.c.Docker(d.ctx, "inspect", "--format", "{{.State.Health.Status}}", strings.TrimSpace(id))
			if err != nil || strings.TrimSpace(out) != "healthy" {
				return false
			}
		}
		return true
	})
}

func (d *dockerEnv) leader(not string) string {
	d.t.Helper()
	id, err := d.c.WaitLeader(d.ctx, not)
	if err != nil {
		d.t.Fatal(err)
	}
	return id
}

// place puts n orders through the balancer, spread over 4 customers, and
// returns how long the first one took.
func (d *dockerEnv) place(n int) time.Duration {
	d.t.Helper()
	start := time.Now()
	var first time.Duration
	for i := range n {
		cust := int32(i % 4)
		if _, err := d.cl.Order(d.ctx, cust, int32(d.acked[cust]+1), wire.Regular); err != nil {
			d.t.Fatalf("order through the balancer: %v", err)
		}
		d.acked[cust]++
		if i == 0 {
			first = time.Since(start)
		}
	}
	return first
}

// checkAll reads every customer through the balancer.
func (d *dockerEnv) checkAll(when string) {
	d.t.Helper()
	for cust, n := range d.acked {
		if r := mustGet(d.t, d.cl, cust, wire.Linearizable); r.OrderCount != n {
			d.t.Fatalf("%s: customer %d has %d orders, %d were acknowledged", when, cust, r.OrderCount, n)
		}
	}
}

// waitCaughtUp waits until service has applied what the leader has.
func (d *dockerEnv) waitCaughtUp(service, leader string) {
	d.t.Helper()
	waitFor(d.t, 60*time.Second, service+" to catch up", func() bool {
		l, err1 := d.c.NodeStatus(d.ctx, leader)
		s, err2 := d.c.NodeStatus(d.ctx, service)
		return err1 == nil && err2 == nil && s.AppliedIndex >= l.AppliedIndex
	})
}

// startDockerEnv builds the image and brings a compose project of its own
// up; everything it made goes when the test ends.
func startDockerEnv(t *testing.T, ctx context.Context) *dockerEnv {
	t.Helper()
	image := buildImage(t, ctx)
	c, err := harness.NewCompose(composeFile, image)
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerEnv{t: t, ctx: ctx, c: c, acked: map[int32]uint64{}}
	t.Cleanup(func() {
		// Whatever happened; the test's own deadline may be over.
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if t.Failed() {
			out, _ := c.Run(cctx, "logs", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		if err := c.Down(cctx); err != nil {
			t.Errorf("compose down: %v", err)
		}
	})
	if err := c.Up(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	d.cl, err = client.New(client.Options{Addrs: []string{c.LBAddr}, RetryTimeout: 30 * time.Second, DialTimeout: 30 * time.Second, TLS: c.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cl.Close() })
	return d
}

// TestDockerCluster runs the compose cluster of deploy/ and breaks it the
// ways production does: a killed container, restarts, down and up, and a
// leader cut off the network.
func TestDockerCluster(t *testing.T) {
	dockerOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	testStart := time.Now()
	d := startDockerEnv(t, ctx)
	c := d.c
	leader := d.leader("")
	d.waitHealthy("after start")
	d.place(40)
	d.checkAll("after start")

	// docker kill the leader's container: orders go on under a new leader.
	d.docker(leader, "kill")
	outage := d.place(40)
	newLeader := d.leader(leader)
	t.Logf("docker kill of leader %s: new leader %s, the first order after the kill took %v", leader, newLeader, outage.Round(time.Millisecond))
	d.docker(leader, "start")
	d.waitCaughtUp(leader, newLeader)
	d.checkAll("after the killed leader came back")

	// A restart of every container, then down and up: nothing is lost.
	d.compose("restart", "-t", "10")
	d.leader("")
	d.checkAll("after compose restart")
	d.place(20)
	d.compose("down", "-t", "10")
	d.compose("up", "-d")
	leader = d.leader("")
	d.checkAll("after compose down and up")

	// Cut the leader off the network: the majority elects a new leader and
	// takes writes; the old leader accepts none.
	d.docker(leader, "network", "disconnect", c.Network())
	began := time.Now()
	newLeader = d.leader(leader)
	d.place(20)
	t.Logf("network disconnect of leader %s: new leader %s, writes back after %v", leader, newLeader, time.Since(began).Round(time.Millisecond))
	old, err := c.Container(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Docker(ctx, "exec", old, "/orderctl", "--certs", "/certs", "--addr", "127.0.0.1:6000", "--timeout", "3s",
		"order", "--customer", "99", "--number", "1"); err == nil {
		t.Fatalf("the cut-off old leader accepted an order: %s", out)
	}
	d.docker(leader, "network", "connect", "--ip", c.IP(leader), c.Network())
	d.waitCaughtUp(leader, newLeader)
	d.checkAll("after the old leader rejoined")
	if r := mustGet(t, d.cl, 99, wire.Linearizable); r.OrderCount != 0 {
		t.Fatalf("customer 99 has %d orders: the cut-off leader's order was applied", r.OrderCount)
	}
	t.Logf("docker test took %v (before teardown)", time.Since(testStart).Round(time.Second))
}

// TestDockerRecoverFromLostQuorum is deploy/README's procedure for a lost
// quorum, with compose: n2's and n3's containers and volumes are gone, n1
// is recovered alone with `compose run ... --recover`, then `up -d` brings
// everything back. n1 must lead with every order at once; n2 and n3, on
// new empty volumes and their usual --peers, must wait instead of founding
// a second cluster; added back, they catch up, and the cluster then
// survives losing n1.
func TestDockerRecoverFromLostQuorum(t *testing.T) {
	dockerOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	d := startDockerEnv(t, ctx)
	c := d.c
	d.place(40)

	d.compose("kill", "n1", "n2", "n3")
	d.compose("rm", "-f", "n2", "n3")
	for _, id := range []string{"n2", "n3"} {
		if _, err := c.Docker(ctx, "volume", "rm", c.Volume(id)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.Run(ctx, "run", "--rm", "--no-deps", "n1",
		"--id", "n1", "--data-dir", "/data", "--recover", "n1="+c.IP("n1")+":7000"); err != nil {
		t.Fatalf("recover n1: %v\n%s", err, out)
	}
	d.compose("up", "-d")
	if l := d.leader(""); l != "n1" {
		t.Fatalf("after recovery %s leads, want n1", l)
	}
	d.checkAll("after recovery")
	d.place(20)
	for _, id := range []string{"n2", "n3"} {
		waitFor(t, 30*time.Second, id+" to come up empty and wait", func() bool {
			sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
			defer scancel()
			st, err := harness.Status(sctx, c.ClientAddr(id), c.ClientTLS())
			return err == nil && st.Term == 0 && st.LastIndex == 0
		})
	}
	n1, err := c.Container(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n2", "n3"} {
		if out, err := c.Docker(ctx, "exec", n1, "/orderctl", "--certs", "/certs", "--addr", "127.0.0.1:6000",
			"members", "add", "--id", id, "--raft-addr", c.IP(id)+":7000"); err != nil {
			t.Fatalf("add %s: %v\n%s", id, err, out)
		}
		d.waitCaughtUp(id, "n1")
	}
	d.checkAll("after adding the lost nodes back")
	d.docker("n1", "kill")
	d.leader("n1")
	d.place(20)
	d.checkAll("after losing n1 again")
}

// TestChaosDocker runs a short chaos against the compose cluster: docker
// kill of the leader, docker pause, network disconnect, and a lost volume
// (container and volume removed, the service brought up again empty).
func TestChaosDocker(t *testing.T) {
	dockerOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	image := buildImage(t, ctx)
	rep := runChaos(t, chaos.Options{Docker: true, ComposeFile: composeFile, Image: image, Duration: 40 * time.Second,
		Seed: 7, Nemeses: []string{failpoint.KillLeader, failpoint.Pause, failpoint.Partition, failpoint.Wipe}})
	// Docker is slower to kill, pause and cut than signals and iptables:
	// a quiet spell, a fault and its heal take 6-12 s here.
	if len(rep.Faults) < 2 {
		t.Errorf("only %d faults injected", len(rep.Faults))
	}
	for _, f := range rep.Faults {
		if f.Err != "" {
			t.Errorf("fault %s on %s: %s", f.Kind, f.Target, f.Err)
		}
	}
	if !rep.Pass() {
		t.Fatalf("chaos checks failed against the compose cluster: %+v", rep.Verdicts)
	}
}
