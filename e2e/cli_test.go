package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/loadgen"
)

// ctl runs a built tool with env added, and returns its combined output,
// exit code and how long it took.
func ctl(t *testing.T, env []string, tool string, args ...string) (string, int, time.Duration) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, tool), args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	return string(out), code, time.Since(start)
}

// TestOrderctlExplainsItself: help per command exits 0 and lists the
// flags; a missing required flag says which; completion scripts exist.
func TestOrderctlExplainsItself(t *testing.T) {
	out, code, _ := ctl(t, nil, "orderctl", "order", "-h")
	if code != 0 || !strings.Contains(out, "--customer") || !strings.Contains(out, "--number") || !strings.Contains(out, "--addr") {
		t.Fatalf("order -h: exit %d\n%s", code, out)
	}
	out, code, _ = ctl(t, nil, "orderctl", "order", "--number", "1")
	if code == 0 || !strings.Contains(out, `required flag(s) "customer" not set`) {
		t.Fatalf("order without --customer: exit %d: %s", code, out)
	}
	for _, sh := range []string{"bash", "zsh"} {
		out, code, _ = ctl(t, nil, "orderctl", "completion", sh)
		if code != 0 || !strings.Contains(out, "orderctl") || len(out) < 1000 {
			t.Fatalf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
	out, code, _ = ctl(t, nil, "ordertest", "bench", "-h")
	if code != 0 || !strings.Contains(out, "--duration") {
		t.Fatalf("ordertest bench -h: exit %d\n%s", code, out)
	}
}

// TestOrderctlFailsFast: when retrying cannot help, orderctl says so at
// once instead of retrying for --timeout (10 s): nothing listening, a
// port that does not speak orderly (a Raft port), a bad request, a
// transfer to the current leader.
func TestOrderctlFailsFast(t *testing.T) {
	c := startCluster(t)
	leader := mustLeader(t, c)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"nothing listens", []string{"--addr", "127.0.0.1:1", "get", "--customer", "1"}, "no orderly node answered"},
		{"a Raft port", []string{"--addr", leader.RaftAddr, "get", "--customer", "1"}, "no orderly node answered"},
		{"a bad flag", []string{"--addr", leader.ClientAddr, "scan", "--limit", "0"}, "--limit 0"},
		{"a bad request", []string{"--addr", leader.ClientAddr, "members", "remove", "--id", "nobody"}, `"nobody" is not a member`},
		{"transfer to the leader", []string{"--addr", leader.ClientAddr, "transfer-leader", "--to", leader.ID}, "already leads"},
	}
	for _, tc := range cases {
		out, code, took := ctl(t, nil, "orderctl", tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d: %s", tc.name, code, out)
		}
		// The bound is the dial timeout (2 s) against the 10 s --timeout.
		if took > 8*time.Second {
			t.Errorf("%s took %v: it waited out the retry budget", tc.name, took)
		}
		t.Logf("%s: %v: %s", tc.name, took.Round(time.Millisecond), strings.TrimSpace(out))
	}
}

// TestOrderctlSaysWhatIsTrue: global flags after the command, endpoints
// from $ORDERLY_ENDPOINTS, a customer without orders, status --all
// through the balancer, bench --duration and its plain progress lines.
func TestOrderctlSaysWhatIsTrue(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	env := []string{"ORDERLY_ENDPOINTS=" + b.Addr}
	out, code, _ := ctl(t, env, "orderctl", "get", "--customer", "424242")
	if code != 0 || !strings.Contains(out, "customer 424242 has no orders") {
		t.Fatalf("get of a customer without orders (endpoints from the environment): exit %d: %s", code, out)
	}
	out, code, _ = ctl(t, nil, "orderctl", "get", "--customer", "424242", "--json", "--addr", b.Addr)
	var rec struct {
		Found *bool `json:"found"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec.Found == nil || *rec.Found {
		t.Fatalf("get --json (global flags after the command): exit %d: %s", code, out)
	}
	out, code, _ = ctl(t, env, "orderctl", "status", "--all", "--json")
	var list []struct {
		ID, Role, Error string
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("status --all: exit %d: %s", code, out)
	}
	roles := map[string]int{}
	for _, s := range list {
		if s.Error != "" {
			t.Fatalf("status --all: %s: %s", s.ID, s.Error)
		}
		roles[s.Role]++
	}
	if roles["balancer"] != 1 || roles["leader"] != 1 || roles["follower"] != 2 {
		t.Fatalf("status --all through the balancer listed %v, want the balancer and all three nodes", roles)
	}

	res := filepath.Join(t.TempDir(), "bench.json")
	out, code, _ = ctl(t, env, "ordertest", "bench", "--customers", "2", "--duration", "2s", "--json-file", res)
	if code != 0 {
		t.Fatalf("bench --duration: exit %d: %s", code, out)
	}
	raw, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	var r loadgen.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.ElapsedSec < 1.9 || r.Ops <= 2*50 {
		t.Fatalf("bench --duration 2s ran %.2fs and %d ops: it stopped at the default --orders", r.ElapsedSec, r.Ops)
	}
	if strings.Contains(out, "\r") || !strings.Contains(out, "ops/s") {
		t.Fatalf("bench's progress to a pipe is not plain lines:\n%q", out)
	}
}
