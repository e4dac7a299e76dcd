package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"orderly/harness"
	"orderly/internal/freeport"
)

// monitoring is deploy/monitoring, seen from this package.
var monitoring = filepath.Join("..", "deploy", "monitoring")

func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

// TestPrometheus: promtool accepts deploy/monitoring's configs and alert
// rules; Debian's Prometheus (`make test` installs it), run with the
// local config pointed at a test cluster, scrapes every node and the
// balancer over mutual TLS, loads the rules, and a query for the orders
// counter returns the orders placed.
func TestPrometheus(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatalf("prometheus is not installed: `make test` installs it (make testdeps): %v", err)
	}
	promtool(t, "check", "rules", filepath.Join(monitoring, "alerts.yml"))
	promtool(t, "test", "rules", filepath.Join(monitoring, "alerts_test.yml"))
	promtool(t, "check", "config", "--syntax-only", filepath.Join(monitoring, "prometheus-local.yml"), filepath.Join(monitoring, "prometheus-compose.yml"))
	var dash map[string]any
	if b, err := os.ReadFile(filepath.Join(monitoring, "grafana-dashboard.json")); err != nil || json.Unmarshal(b, &dash) != nil || len(dash["panels"].([]any)) == 0 {
		t.Fatalf("grafana-dashboard.json is not a dashboard with panels: %v", err)
	}

	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	lb := startBalancer(t, c)
	// The local config, pointed at this cluster's ports and certificates.
	raw, err := os.ReadFile(filepath.Join(monitoring, "prometheus-local.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join(monitoring, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("127.0.0.1:8000", lb.HTTPAddr, "127.0.0.1:8001", c.Nodes[0].HTTPAddr,
		"127.0.0.1:8002", c.Nodes[1].HTTPAddr, "127.0.0.1:8003", c.Nodes[2].HTTPAddr,
		"../../data/certs/", certs.Dir+"/", "- alerts.yml", "- "+rules, "scrape_interval: 5s", "scrape_interval: 1s").Replace(string(raw))
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "config", cfgPath) // with the files it names
	web, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	prom := exec.Command("prometheus", "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+web)
	prom.Stdout, prom.Stderr = logf, logf
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		prom.Process.Kill() //nolint:errcheck // teardown
		prom.Wait()         //nolint:errcheck // killed
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", tail(b, 4000))
		}
	}()
	mustOrders(t, []string{lb.Addr}, 7, 25)

	query := func(q string) []float64 {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &r) != nil || r.Status != "success" {
			return nil
		}
		var vs []float64
		for _, s := range r.Data.Result {
			if str, ok := s.Value[1].(string); ok {
				if v, err := strconv.ParseFloat(str, 64); err == nil {
					vs = append(vs, v)
				}
			}
		}
		return vs
	}
	waitFor(t, 30*time.Second, "Prometheus to scrape all four side ports", func() bool {
		up := query(`up{job=~"orderly-.*"}`)
		return len(up) == 4 && up[0]+up[1]+up[2]+up[3] == 4
	})
	var applied []float64
	waitFor(t, 30*time.Second, "the orders counter in Prometheus", func() bool {
		applied = query(`sum(orderly_orders_applied_total{job="orderly-nodes"})`)
		return len(applied) == 1 && applied[0] >= 3*25 // every replica applies every order
	})
	if lat := query(`sum(orderly_request_duration_seconds_count{job="orderly-balancer",op="Order"})`); len(lat) != 1 || lat[0] < 25 {
		t.Fatalf("the balancer's order latency histogram in Prometheus: %v", lat)
	}
	resp, err := http.Get("http://" + web + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if n := strings.Count(string(b), `"type":"alerting"`); n != 13 {
		t.Fatalf("Prometheus loaded %d alert rules, want 13: %s", n, tail(b, 500))
	}
	if strings.Contains(string(b), `"health":"err"`) {
		t.Fatalf("an alert rule fails to evaluate: %s", b)
	}
	t.Logf("Prometheus scraped 4 side ports; sum(orderly_orders_applied_total) = %v", applied[0])
}
