package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/harness"
	"orderly/internal/freeport"
)

// TestFlagsThatCannotLie: values a daemon cannot use are refused at
// start with a message naming the flag, never truncated or discovered
// later on the first client.
func TestFlagsThatCannotLie(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		bin  string
		args []string
		want string
	}{
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--max-frame", "5000000000"}, "--max-frame 5000000000: must fit in 32 bits"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--max-frame", "70000000"}, "max frame 70000000: must be between 64 and"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--peers", "n1=127.0.0.1:7001,n2=nonsense"}, "n2=nonsense: not a host:port"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--handshake-timeout", "0s"}, "handshake timeout 0s: must be positive"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--max-sessions", "5000000000"}, "--max-sessions 5000000000: must fit in 32 bits"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--rate-limit", "-1"}, "rate limit -1: must not be negative"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--min-free", "lots"}, `size "lots": want a number of bytes`},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--log-store", "zfs"}, `log store "zfs": want wal or boltdb`},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--watch-history", "0"}, `watch history 0: want 1 to`},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--max-watchers", "0"}, `max watchers 0: want at least 1`},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--snapshot-interval", "1ms"}, "snapshot interval 1ms: must be at least 5ms"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--restore", dir}, "restore: --peers must list the new cluster's members"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--restore", dir, "--peers", "n2=127.0.0.1:7002"}, `restore: node "n1" is not among --peers`},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--restore", filepath.Join(dir, "none"), "--peers", "n1=127.0.0.1:7001"}, "restore: open backup"},
		{"orderctl", []string{"dashboard", "--target", "127.0.0.1:8000", "--listen", "0.0.0.0:8080"}, "must be a loopback address"},
		{"ordertest", []string{"--insecure", "--addr", "127.0.0.1:1", "bench", "--customers", "1", "--orders", "1", "--rate", "-1"}, "rate -1: want 0 (no bound) or more"},
		{"ordertest", []string{"chaos", "--report", dir, "--load", "heavy"}, `load "heavy": want normal, high or mixed`},
		{"ordertest", []string{"chaos", "--report", dir, "--nemesis", "all,meteor"}, `nemesis "meteor": want`},
		{"orderlb", []string{"--insecure", "--backends", "foo"}, `backend "foo": want host:port`},
		{"orderlb", []string{"--insecure", "--backends", "127.0.0.1:6001", "--max-reply-bytes", "10"}, "max reply bytes 10: need at least 1 and 65536"},
		{"orderlb", []string{"--insecure", "--backends", "127.0.0.1:6001", "--max-frame", "10"}, "max frame 10: must be between 64 and"},
		{"orderd", []string{"--insecure", "--id", "n1", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--http-max-watchers", "0"}, "--http-max-watchers 0"},
		{"orderlb", []string{"--insecure", "--backends", "127.0.0.1:6001", "--http-addr", "127.0.0.1:0", "--http-max-watchers-per-client", "0"}, "need at least 1, 1 and 0"},
		{"orderlb", []string{"--insecure", "--backends", "127.0.0.1:6001", "--http-addr", "127.0.0.1:0", "--http-rate-limit", "-5"}, "--http-rate-limit -5"},
	}
	for _, tc := range cases {
		out, err := exec.Command(filepath.Join(bin, tc.bin), tc.args...).CombinedOutput()
		if err == nil {
			t.Errorf("%s %v started", tc.bin, tc.args)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%s %v said %q, want %q", tc.bin, tc.args, out, tc.want)
		}
	}
}

// TestDataDirInUse: a second orderd on a running node's data dir says so
// and exits (the log store's lock wait is bounded), leaving the running
// node alone.
// orderdOn runs a second orderd on node n's id and data dir, on free
// ports, with extra flags, and returns its output when it exits.
func orderdOn(n *harness.Node, extra ...string) ([]byte, error) {
	raftAddr, _ := freeport.Addr("127.0.0.1")
	clientAddr, _ := freeport.Addr("127.0.0.1")
	args := append([]string{"--id", n.ID, "--data-dir", n.DataDir, "--raft-addr", raftAddr, "--client-addr", clientAddr}, certs.Flags(n.ID)...)
	return exec.Command(filepath.Join(bin, "orderd"), append(args, extra...)...).CombinedOutput()
}

func TestDataDirInUse(t *testing.T) {
	c := startCluster(t)
	start := time.Now()
	out, err := orderdOn(c.Node("n1"))
	if err == nil || !strings.Contains(string(out), "data dir in use by another orderd") {
		t.Fatalf("a second orderd on n1's data dir: %v\n%s", err, out)
	}
	t.Logf("refused after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	mustOrders(t, c.Addrs(), 4, 3)
}
