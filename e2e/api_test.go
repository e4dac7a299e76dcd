package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/backup"
	"orderly/harness"
)

type apiLaptop struct {
	Customer   int32
	Number     int32
	Type       string
	Engineer   int32
	Expert     int32
	Index      uint64
	OrderCount uint64 `json:"order_count"`
}

type apiRecord struct {
	Customer   int32
	LastOrder  int32  `json:"last_order"`
	OrderCount uint64 `json:"order_count"`
	ReadIndex  uint64 `json:"read_index"`
}

// TestAPI drives every /v1/ call through the built binaries, at the
// balancer, a follower and the leader, with the right role and the
// wrong one, and checks every call and answer against api/openapi.yaml:
// a follower forwards orders to the leader; reads work at every level;
// admin calls need the admin role; a backup downloads whole.
func TestAPI(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	lb := startBalancer(t, c)
	leader := mustLeader(t, c)
	follower := followersOf(c, leader)[0]
	targets := []struct{ name, addr string }{{"balancer", lb.HTTPAddr}, {"follower", follower.HTTPAddr}, {"leader", leader.HTTPAddr}}
	for i, tg := range targets {
		w, r, nobody := newAPIClient(t, tg.addr, "writer"), newAPIClient(t, tg.addr, "reader"), newAPIClient(t, tg.addr, "")
		cust := int32(100 + i)
		placed, err := w.order(cust, 1, "custom", "")
		if err != nil || placed.Status != http.StatusCreated {
			t.Fatalf("%s: order: %v %d %s", tg.name, err, placed.Status, placed.Body)
		}
		var li apiLaptop
		placed.decode(t, &li)
		if li.Customer != cust || li.Number != 1 || li.Type != "custom" || li.Expert < 0 || li.Index == 0 || li.OrderCount != 1 {
			t.Fatalf("%s: order answered %+v", tg.name, li)
		}
		if got := r.must("POST", "/v1/orders", nil, []byte(`{"customer":1,"number":1,"type":"regular"}`)); got.Status != http.StatusForbidden ||
			!strings.Contains(string(got.Body), "writer") {
			t.Errorf("%s: a reader's order: %d %s, want 403 naming the role needed", tg.name, got.Status, got.Body)
		}
		if got := nobody.must("GET", "/v1/status", nil, nil); got.Status != http.StatusUnauthorized {
			t.Errorf("%s: status without a certificate: %d %s, want 401", tg.name, got.Status, got.Body)
		}
		for _, level := range []string{"linearizable", "session&min_index=" + jsonNum(li.Index), "stale"} {
			got := r.must("GET", "/v1/customers/"+jsonNum(uint64(cust))+"?consistency="+level, nil, nil)
			if level == "stale" && got.Status == http.StatusNotFound {
				continue // a stale read may not see it yet
			}
			var rec apiRecord
			got.decode(t, &rec)
			if got.Status != http.StatusOK || rec.LastOrder != 1 || rec.OrderCount != 1 {
				t.Errorf("%s: %s read: %d %s", tg.name, level, got.Status, got.Body)
			}
		}
		if got := r.must("GET", "/v1/customers/999999", nil, nil); got.Status != http.StatusNotFound || got.errorCode() != "NotFound" {
			t.Errorf("%s: a customer without orders: %d %s, want 404 NotFound", tg.name, got.Status, got.Body)
		}
		for _, path := range []string{"/v1/status", "/v1/members", "/v1/shards", "/v1/customers?from=0&limit=2"} {
			if got := r.must("GET", path, nil, nil); got.Status != http.StatusOK {
				t.Errorf("%s: GET %s: %d %s", tg.name, path, got.Status, got.Body)
			}
		}
		if got := w.must("POST", "/v1/leader/transfer", nil, nil); got.Status != http.StatusForbidden {
			t.Errorf("%s: a writer's transfer-leader: %d %s, want 403", tg.name, got.Status, got.Body)
		}
		if got := w.must("POST", "/v1/members", nil, []byte(`{"id":"n8","raft_addr":"127.0.0.1:1"}`)); got.Status != http.StatusForbidden {
			t.Errorf("%s: a writer's members add: %d %s, want 403", tg.name, got.Status, got.Body)
		}
		if got := w.must("DELETE", "/v1/members/n1", nil, nil); got.Status != http.StatusForbidden {
			t.Errorf("%s: a writer's members remove: %d %s, want 403", tg.name, got.Status, got.Body)
		}
		if got := w.must("GET", "/v1/snapshot", nil, nil); got.Status != http.StatusForbidden {
			t.Errorf("%s: a writer's snapshot: %d %s, want 403", tg.name, got.Status, got.Body)
		}
	}

	// Pages: every customer once, in id order, through the cursor.
	r := newAPIClient(t, lb.HTTPAddr, "reader")
	var seen []int32
	for from := "0"; ; {
		got := r.must("GET", "/v1/customers?limit=1&from="+from, nil, nil)
		var p struct {
			Customers []apiRecord
			Next      *int32
		}
		got.decode(t, &p)
		for _, cu := range p.Customers {
			seen = append(seen, cu.Customer)
		}
		if p.Next == nil {
			break
		}
		from = jsonNum(uint64(*p.Next))
	}
	if len(seen) != 3 || seen[0] != 100 || seen[2] != 102 {
		t.Errorf("paged customers %v, want [100 101 102]", seen)
	}

	// Admin calls at the leader: a backup that restores, members, a
	// leadership transfer.
	admin := newAPIClient(t, leader.HTTPAddr, "orderctl")
	snap := admin.must("GET", "/v1/snapshot", nil, nil)
	if snap.Status != http.StatusOK {
		t.Fatalf("snapshot: %d %s", snap.Status, snap.Body)
	}
	path := filepath.Join(t.TempDir(), "api.backup")
	if err := os.WriteFile(path, snap.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := backup.Open(path); err != nil {
		t.Errorf("the downloaded backup does not open: %v", err)
	} else {
		f.Close()
	}
	if got := admin.must("POST", "/v1/members", nil, []byte(`{"id":"n9","raft_addr":"127.0.0.1:1","voter":false}`)); got.Status != http.StatusOK {
		t.Errorf("add member: %d %s", got.Status, got.Body)
	}
	if got := admin.must("DELETE", "/v1/members/n9", nil, nil); got.Status != http.StatusOK {
		t.Errorf("remove member: %d %s", got.Status, got.Body)
	}
	if got := admin.must("POST", "/v1/leader/transfer", nil, []byte(`{}`)); got.Status != http.StatusOK {
		t.Errorf("transfer leader: %d %s", got.Status, got.Body)
	}
	if got := admin.must("GET", "/v1/nothing", nil, nil); got.Status != http.StatusNotFound {
		t.Errorf("unknown path: %d %s", got.Status, got.Body)
	}
	if got := admin.must("PUT", "/v1/orders", nil, nil); got.Status != http.StatusMethodNotAllowed || got.Header.Get("Allow") != "POST" {
		t.Errorf("PUT /v1/orders: %d %v %s", got.Status, got.Header, got.Body)
	}
}

// TestAPIBadInput: malformed calls get a clear 4xx and apply nothing.
func TestAPIBadInput(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	lb := startBalancer(t, c)
	w := newAPIClient(t, lb.HTTPAddr, "writer")
	const cust = 7
	if got, err := w.order(cust, 1, "regular", ""); err != nil || got.Status != http.StatusCreated {
		t.Fatalf("order: %v %d %s", err, got.Status, got.Body)
	}
	huge := `{"customer":7,"number":2,"type":"regular","pad":"` + strings.Repeat("x", 4096) + `"}`
	for _, tc := range []struct {
		name, body, ctype, key string
		want                   int
	}{
		{"malformed JSON", `{"customer":7,`, "", "", 400},
		{"unknown field", `{"customer":7,"number":2,"type":"regular","price":3}`, "", "", 400},
		{"missing number", `{"customer":7,"type":"regular"}`, "", "", 400},
		{"negative customer", `{"customer":-7,"number":2,"type":"regular"}`, "", "", 400},
		{"negative number", `{"customer":7,"number":-2,"type":"regular"}`, "", "", 400},
		{"customer over int32", `{"customer":4294967296,"number":2,"type":"regular"}`, "", "", 400},
		{"unknown type", `{"customer":7,"number":2,"type":"gold"}`, "", "", 400},
		{"two objects", `{"customer":7,"number":2,"type":"regular"}{}`, "", "", 400},
		{"huge body", huge, "", "", 413},
		{"wrong content type", `customer=7`, "application/x-www-form-urlencoded", "", 415},
		{"key too long", `{"customer":7,"number":2,"type":"regular"}`, "", strings.Repeat("k", 300), 400},
		{"key with a space", `{"customer":7,"number":2,"type":"regular"}`, "", "a b", 400},
	} {
		h := http.Header{}
		if tc.ctype != "" {
			h.Set("Content-Type", tc.ctype)
		}
		if tc.key != "" {
			h.Set("Idempotency-Key", tc.key)
		}
		got := w.must("POST", "/v1/orders", h, []byte(tc.body))
		if got.Status != tc.want || got.errorCode() == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", tc.name, got.Status, got.Body, tc.want)
		}
	}
	for _, path := range []string{"/v1/customers/-1", "/v1/customers/abc", "/v1/customers/7?consistency=eventual",
		"/v1/customers/7?min_index=-3", "/v1/customers?limit=0", "/v1/customers?limit=100000", "/v1/watch?customer=-2"} {
		if got := w.must("GET", path, nil, nil); got.Status != http.StatusBadRequest || got.errorCode() != "BadRequest" {
			t.Errorf("GET %s: %d %s, want 400 BadRequest", path, got.Status, got.Body)
		}
	}
	got := w.must("GET", "/v1/customers/7", nil, nil)
	var rec apiRecord
	got.decode(t, &rec)
	if rec.OrderCount != 1 || rec.LastOrder != 1 {
		t.Errorf("after the bad calls customer 7 has %+v, want its one order only", rec)
	}
}

// TestAPISlowHeaders: a client that sends a request's headers a byte at
// a time (slow loris), with a certificate, is cut off by the side port's
// header timeout (5 s), and one that sends its body slowly by the read
// timeout (10 s): neither holds a connection for long.
func TestAPISlowHeaders(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	lb := startBalancer(t, c)
	f, err := certs.Client("writer")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, head, drip string }{
		{"headers", "POST /v1/orders HTTP/1.1\r\nHost: x\r\n", "X-Slow: a\r\n"},
		{"body", "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", " "},
	} {
		conn, err := tls.Dial("tcp", lb.HTTPAddr, f("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		closed := make(chan time.Duration, 1)
		go func() {
			io.Copy(io.Discard, conn) //nolint:errcheck // ends when the server closes
			closed <- time.Since(start)
		}()
		fmt.Fprint(conn, tc.head)
		var took time.Duration
	drip:
		for {
			select {
			case took = <-closed:
				break drip
			case <-time.After(500 * time.Millisecond):
				if _, err := fmt.Fprint(conn, tc.drip); err != nil {
					took = <-closed
					break drip
				}
			}
			if time.Since(start) > 40*time.Second {
				t.Fatalf("%s: a slow client still holds its connection after 40 s", tc.name)
			}
		}
		conn.Close()
		t.Logf("slow %s: cut off after %v", tc.name, took.Round(100*time.Millisecond))
	}
}

func jsonNum(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestREADMECurlLines runs the README's three curl lines for the HTTP API
// (with make run's addresses and certificate directory replaced by the
// test cluster's), so that what a newcomer copies works.
func TestREADMECurlLines(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl (make testdeps installs it): %v", err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "**Any language.**")
	if ok {
		_, block, ok = strings.Cut(block, "```sh\n")
	}
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("README.md has no sh block after **Any language.**")
	}
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	lb := startBalancer(t, c)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		l = strings.ReplaceAll(l, "data/certs", certs.Dir)
		lines = append(lines, strings.ReplaceAll(l, "127.0.0.1:8000", lb.HTTPAddr))
	}
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "C=") {
		t.Fatalf("README's block is not C=... and three curl lines: %q", lines)
	}
	for i, want := range []string{`"customer":7`, `"order_count":1`, "event: order"} {
		line := lines[0] + "; " + strings.Replace(lines[i+1], "curl ", curl+" -sS --max-time 3 ", 1)
		out, err := exec.Command("bash", "-c", line).CombinedOutput()
		if err != nil && !(i == 2 && strings.Contains(err.Error(), "exit status 28")) { // the watch runs until the timeout
			t.Fatalf("%s: %v\n%s", lines[i+1], err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s printed %q, want %s in it", lines[i+1], out, want)
		}
	}
}
