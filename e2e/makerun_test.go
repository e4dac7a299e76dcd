package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orderly/client"
	"orderly/pki"
)

// lockedWriter collects a process's output while the test reads it.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// makeRun starts deploy/local-cluster.sh (what make run runs) on host,
// with the e2e binaries.
func makeRun(host, data string) (*exec.Cmd, *lockedWriter) {
	cmd := exec.Command("../deploy/local-cluster.sh")
	cmd.Env = append(os.Environ(), "BIN="+prodBin, "DATA="+data, "HOST="+host)
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	// A failed test must not wait for the nodes the script started to let
	// go of its output (20 minutes, to the test timeout).
	cmd.WaitDelay = 5 * time.Second
	return cmd, out
}

// TestMakeRunTellsTheTruth runs make run's script on its own loopback
// address (127.0.0.2, so a real make run on 127.0.0.1 is untouched): it
// refuses a busy port and a second run on the same data dir, starting
// nothing; it says which process exited and how to start it again; and
// SIGTERM stops it with status 0.
func TestMakeRunTellsTheTruth(t *testing.T) {
	const host = "127.0.0.2"
	// A busy port: refused, nothing started.
	ln, err := net.Listen("tcp", host+":7002")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cmd, out := makeRun(host, data)
	err = cmd.Run()
	ln.Close()
	if err == nil || !strings.Contains(out.String(), "port(s) 7002 on "+host+" already taken; nothing started") {
		t.Fatalf("make run with a busy port: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "n1.log")); err == nil {
		t.Fatal("make run started a node although a port was taken")
	}

	// Up for real.
	cmd, out = makeRun(host, data)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the script's trap stops what it started; SIGKILL would leave it running
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // best effort
		cmd.Wait()                          //nolint:errcheck // best effort
	})
	waitFor(t, 20*time.Second, "make run to start", func() bool { return strings.Contains(out.String(), "orderly is running") })
	// Its own development CA, made on this first start, in DATA/certs.
	admin, err := pki.Load(pki.InDir(filepath.Join(data, "certs"), "orderctl"), nil)
	if err != nil {
		t.Fatalf("make run's client certificate: %v", err)
	}
	cl, err := client.New(client.Options{Addrs: []string{host + ":6000"}, RetryTimeout: 20 * time.Second, DialTimeout: 20 * time.Second, TLS: admin.ClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mustOrdersWith(t, cl, 1, 3)
	// The commands it advertises work against it, with its certificates.
	// (A backup is an admin's call: it goes to a node, as make run says;
	// its balancer forwards writers at most.)
	for _, args := range [][]string{{"alarm", "list"}, {"--addr", host + ":6001", "snapshot", "save", filepath.Join(t.TempDir(), "b.snap")},
		{"health", "--target", host + ":8000", "--wait", "10s"}, {"health", "--target", host + ":8001", "--wait", "10s"}} {
		c := exec.Command(filepath.Join(bin, "orderctl"), append([]string{"--addr", host + ":6000"}, args...)...)
		c.Env = append(os.Environ(), "ORDERLY_CERTS="+filepath.Join(data, "certs"))
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("orderctl %v against make run: %v\n%s", args, err, out)
		}
	}

	// A second one on the same data dir is refused.
	second, out2 := makeRun(host, data)
	if err := second.Run(); err == nil || !strings.Contains(out2.String(), "another make run is up") {
		t.Fatalf("a second make run: %v\n%s", err, out2)
	}

	// A node dies: make run says which and how to start it again.
	if err := exec.Command("pkill", "-KILL", "-f", "orderd --id n2 --data-dir "+filepath.Join(data, "n2")).Run(); err != nil {
		t.Fatalf("pkill n2: %v", err)
	}
	waitFor(t, 10*time.Second, "make run to report n2", func() bool {
		return strings.Contains(out.String(), "orderd n2 exited with status 137") && strings.Contains(out.String(), "start it again")
	})
	if !strings.Contains(out.String(), "--id n2 --data-dir "+filepath.Join(data, "n2")) {
		t.Fatalf("no restart command for n2:\n%s", out)
	}

	// SIGTERM (Ctrl-C sends SIGINT to every process of the group; the
	// script's trap is the same): everything stops, exit status 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("make run after SIGTERM: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "stopped.") {
		t.Fatalf("no clean stop:\n%s", out)
	}
}
