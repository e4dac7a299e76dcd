package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/chaos"
	"orderly/client"
	"orderly/wire"
)

// dockerEnv drives one compose project built from deploy/ for a test.
type dockerEnv struct {
	t       *testing.T
	ctx     context.Context
	compose []string // "docker compose" or "docker-compose", with -p and -f
	env     []string
	project string
	net     string // first three octets of the private /24
	lbAddr  string
	acked   map[int32]uint64
	cl      *client.Client
}

func (d *dockerEnv) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), d.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (d *dockerEnv) must(name string, args ...string) string {
	d.t.Helper()
	out, err := d.run(name, args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

func (d *dockerEnv) composeRun(args ...string) string {
	d.t.Helper()
	return d.must(d.compose[0], append(d.compose[1:], args...)...)
}

// container is the id of a service's container.
func (d *dockerEnv) container(service string) string {
	d.t.Helper()
	return d.composeRun("ps", "-q", service)
}

// nodeStatus asks a node from inside its container (the scratch image
// has orderctl, and nothing else).
func (d *dockerEnv) nodeStatus(service string) (wire.StatusInfo, error) {
	out, err := d.run("docker", "exec", d.container(service), "/orderctl", "--addr", "127.0.0.1:6000", "--timeout", "2s", "--json", "status")
	if err != nil {
		return wire.StatusInfo{}, err
	}
	var s struct {
		Role, LeaderID string
		Applied        uint64 `json:"applied_index"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return wire.StatusInfo{}, fmt.Errorf("status of %s: %w: %s", service, err, out)
	}
	return wire.StatusInfo{Role: s.Role, LeaderID: s.LeaderID, AppliedIndex: s.Applied}, nil
}

// leader waits until the balancer knows a leader other than not.
func (d *dockerEnv) leader(not string) string {
	d.t.Helper()
	var last string
	waitFor(d.t, 60*time.Second, "a leader other than "+not, func() bool {
		ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
		defer cancel()
		s, err := chaos.Status(ctx, d.lbAddr)
		last = s.LeaderID
		return err == nil && s.LeaderID != "" && s.LeaderID != not
	})
	return last
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
		r := mustGet(d.t, d.cl, cust, wire.Linearizable)
		if r.OrderCount != n {
			d.t.Fatalf("%s: customer %d has %d orders, %d were acknowledged", when, cust, r.OrderCount, n)
		}
	}
}

// waitCaughtUp waits until service has applied what the leader has.
func (d *dockerEnv) waitCaughtUp(service, leader string) {
	d.t.Helper()
	waitFor(d.t, 60*time.Second, service+" to catch up", func() bool {
		l, err1 := d.nodeStatus(leader)
		s, err2 := d.nodeStatus(service)
		return err1 == nil && err2 == nil && s.AppliedIndex >= l.AppliedIndex
	})
}

// TestDockerCluster runs the compose cluster of deploy/ and breaks it the
// ways production does: a killed container, restarts, down and up, and a
// leader cut off the network.
func TestDockerCluster(t *testing.T) {
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("SKIPPED TestDockerCluster: `docker info` failed, so there is no Docker engine to test with: %v %s", err, firstLine(out))
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	compose := []string{"docker-compose"}
	if exec.Command("docker", "compose", "version").Run() == nil {
		compose = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err != nil {
		msg := "SKIPPED TestDockerCluster: neither `docker compose` nor `docker-compose` is installed"
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var b [2]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	netPrefix := fmt.Sprintf("10.215.%d", int(b[0])%250+1)
	lbPort, legacyPort := freePortNumber(t), freePortNumber(t)
	d := &dockerEnv{t: t, ctx: ctx, project: "orderlytest" + id, net: netPrefix,
		lbAddr: "127.0.0.1:" + lbPort, acked: map[int32]uint64{}}
	image := "orderly:test-" + id
	d.env = []string{"ORDERLY_IMAGE=" + image, "ORDERLY_NET=" + netPrefix, "ORDERLY_LB_PORT=" + lbPort, "ORDERLY_LEGACY_PORT=" + legacyPort,
		fmt.Sprintf("ORDERLY_PEERS=n1=%[1]s.11:7000,n2=%[1]s.12:7000,n3=%[1]s.13:7000", netPrefix),
		fmt.Sprintf("ORDERLY_BACKENDS=%[1]s.11:6000,%[1]s.12:6000,%[1]s.13:6000", netPrefix)}
	d.compose = append(compose, "-p", d.project, "-f", filepath.Join("..", "deploy", "compose.yaml"))

	// The image, as make docker builds it, under a tag of this test's own.
	testStart := time.Now()
	began := testStart
	bctx := t.TempDir()
	os.Mkdir(filepath.Join(bctx, "data"), 0o755)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bctx+string(os.PathSeparator), "orderly/cmd/orderd", "orderly/cmd/orderlb", "orderly/cmd/orderctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// Everything the test made goes, whatever happened: containers,
		// network, volumes, image. The test's own deadline may be over.
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		d.ctx = cctx
		if t.Failed() {
			out, _ := d.run(d.compose[0], append(d.compose[1:], "logs", "--tail", "40")...)
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := d.run(d.compose[0], append(d.compose[1:], "down", "-v", "--remove-orphans", "-t", "5")...); err != nil {
			t.Errorf("compose down: %v %s", err, out)
		}
		d.run("docker", "rmi", "-f", image) //nolint:errcheck // gone already if the build failed
	})
	d.must("docker", "build", "-q", "-t", image, "-f", filepath.Join("..", "deploy", "Dockerfile"), bctx)
	t.Logf("image built in %v", time.Since(began).Round(time.Millisecond))

	d.composeRun("up", "-d")
	cl, err := client.New(client.Options{Addrs: []string{d.lbAddr}, RetryTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	d.cl = cl
	leader := d.leader("")
	d.place(40)
	d.checkAll("after start")

	// docker kill the leader's container: orders go on under a new leader.
	d.must("docker", "kill", d.container(leader))
	outage := d.place(40)
	newLeader := d.leader(leader)
	t.Logf("docker kill of leader %s: new leader %s, the first order after the kill took %v", leader, newLeader, outage.Round(time.Millisecond))
	d.must("docker", "start", d.container(leader))
	d.waitCaughtUp(leader, newLeader)
	d.checkAll("after the killed leader came back")

	// A restart of every container, then down and up: nothing is lost.
	d.composeRun("restart", "-t", "10")
	d.leader("")
	d.checkAll("after compose restart")
	d.place(20)
	d.composeRun("down", "-t", "10")
	d.composeRun("up", "-d")
	leader = d.leader("")
	d.checkAll("after compose down and up")

	// Cut the leader off the network: the majority elects a new leader and
	// takes writes; the old leader accepts none.
	network := d.project + "_orderly"
	old := d.container(leader)
	d.must("docker", "network", "disconnect", network, old)
	began = time.Now()
	newLeader = d.leader(leader)
	d.place(20)
	t.Logf("network disconnect of leader %s: new leader %s, writes back after %v", leader, newLeader, time.Since(began).Round(time.Millisecond))
	if out, err := d.run("docker", "exec", old, "/orderctl", "--addr", "127.0.0.1:6000", "--timeout", "3s",
		"order", "--customer", "99", "--number", "1"); err == nil {
		t.Fatalf("the cut-off old leader accepted an order: %s", out)
	}
	ip := map[string]string{"n1": ".11", "n2": ".12", "n3": ".13"}[leader]
	d.must("docker", "network", "connect", "--ip", netPrefix+ip, network, old)
	d.waitCaughtUp(leader, newLeader)
	d.checkAll("after the old leader rejoined")
	if r := mustGet(t, cl, 99, wire.Linearizable); r.OrderCount != 0 {
		t.Fatalf("customer 99 has %d orders: the cut-off leader's order was applied", r.OrderCount)
	}
	t.Logf("docker test took %v (before teardown)", time.Since(testStart).Round(time.Second))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func freePortNumber(t *testing.T) string {
	t.Helper()
	addr, err := chaos.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	return port
}
