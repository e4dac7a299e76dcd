package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"orderly/harness"
)

// httpsGet fetches a side port's path presenting certificate name ("":
// none) and returns the status code and body.
func httpsGet(t *testing.T, addr, path, name string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: sideTLS(t, addr, name)}}
	defer cl.CloseIdleConnections()
	resp, err := cl.Get("https://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sideTLS is the TLS configuration of a client of side port addr
// presenting certificate name ("": none).
func sideTLS(t *testing.T, addr, name string) *tls.Config {
	t.Helper()
	host, _, _ := net.SplitHostPort(addr)
	cfg := certs.Admin()(host)
	if name == "" {
		cfg.Certificates = nil
	} else if name != "orderctl" {
		f, err := certs.Client(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg = f(host)
	}
	return cfg
}

func metricsOf(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpsGet(t, addr, "/metrics", "reader")
	if code != http.StatusOK {
		t.Fatalf("/metrics of %s: %d %s", addr, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics of %s does not parse as Prometheus text: %v", addr, err)
	}
	return fams
}

func counterValue(f *dto.MetricFamily, labels map[string]string) float64 {
	sum := 0.0
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				continue next
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// TestSideport: every node and the balancer serve /metrics in the
// Prometheus text format (orderly's own, hashicorp/raft's bridged, Go's),
// whose order counter moves with orders; /livez and /readyz answer anyone,
// /metrics needs a certificate and /debug/pprof an admin's; /readyz turns
// unready on nodes that lost their leader and on the balancer, and ready
// again once the cluster is back.
func TestSidePort(t *testing.T) {
	c, err := harness.StartCluster(harness.ClusterConfig{Certs: certs, HTTP: true, Orderd: filepath.Join(bin, "orderd"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	b, err := c.StartBalancer(filepath.Join(bin, "orderlb"))
	if err != nil {
		t.Fatal(err)
	}
	leader := mustLeader(t, c)
	before := counterValue(metricsOf(t, leader.HTTPAddr)["orderly_requests_total"], map[string]string{"op": "Order", "code": "ok"})
	mustOrders(t, []string{leader.ClientAddr}, 3, 20)
	fams := metricsOf(t, leader.HTTPAddr)
	for _, want := range []string{"orderly_requests_total", "orderly_request_duration_seconds", "orderly_commit_index",
		"orderly_apply_lag", "orderly_sessions", "go_goroutines", "process_resident_memory_bytes",
		"orderly_orders_applied_total", "orderly_orders_duplicate_total", "orderly_read_index_rounds_total", "orderly_read_index_reads_total",
		"orderly_raft_entries_proposed_total", "orderly_orders_proposed_total", "orderly_log_append_duration_seconds",
		"orderly_snapshot_duration_seconds", "orderly_snapshot_size_bytes", "orderly_disk_free_bytes", "orderly_disk_alarm"} {
		if fams[want] == nil {
			t.Errorf("leader's /metrics has no %s", want)
		}
	}
	raftMetrics := 0
	for name := range fams {
		if strings.HasPrefix(name, "orderly_raft_") {
			raftMetrics++
		}
	}
	if raftMetrics == 0 {
		t.Error("no hashicorp/raft metric bridged (orderly_raft_...)")
	}
	if after := counterValue(fams["orderly_requests_total"], map[string]string{"op": "Order", "code": "ok"}); after-before < 20 {
		t.Errorf("orderly_requests_total{op=Order,code=ok} moved by %v for 20 orders", after-before)
	}
	if applied := counterValue(fams["orderly_orders_applied_total"], map[string]string{"type": "regular"}); applied < 20 {
		t.Errorf("orderly_orders_applied_total{type=regular} is %v after 20 orders", applied)
	}
	if h := fams["orderly_log_append_duration_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		t.Error("orderly_log_append_duration_seconds counted no log write")
	}
	bfams := metricsOf(t, b.HTTPAddr)
	for _, want := range []string{"orderly_balancer_cache_hits_total", "orderly_balancer_cache_misses_total", "orderly_balancer_cache_evictions_total",
		"orderly_balancer_retries_total", "orderly_balancer_redirects_total", "orderly_requests_in_flight", "orderly_backends_healthy", "orderly_backend_up",
		"orderly_orders_waiting_turn", "orderly_balancer_orders_turn_expired_total"} {
		if bfams[want] == nil {
			t.Errorf("the balancer's /metrics has no %s", want)
		}
	}
	// Who may read what.
	for _, p := range []struct {
		addr, path, as string
		want           int
	}{
		{leader.HTTPAddr, "/livez", "", 200}, {leader.HTTPAddr, "/readyz", "", 200}, {b.HTTPAddr, "/readyz", "", 200},
		{leader.HTTPAddr, "/metrics", "", 401}, {b.HTTPAddr, "/metrics", "", 401},
		{leader.HTTPAddr, "/", "", 401}, {b.HTTPAddr, "/api/cluster", "", 401}, {leader.HTTPAddr, "/api/cluster", "reader", 200},
		{b.HTTPAddr, "/", "reader", 200}, {leader.HTTPAddr, "/ui/app.js", "", 401}, {leader.HTTPAddr, "/nothing", "reader", 404},
		{leader.HTTPAddr, "/debug/pprof/", "reader", 403}, {leader.HTTPAddr, "/debug/pprof/", "orderctl", 200},
	} {
		if code, body := httpsGet(t, p.addr, p.path, p.as); code != p.want {
			t.Errorf("%s%s as %q: %d %q, want %d", p.addr, p.path, p.as, code, body, p.want)
		}
	}
	// Two nodes down: the third has no leader, nor has the balancer.
	var down []*harness.Node
	for _, n := range c.Nodes {
		if len(down) < 2 {
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
			down = append(down, n)
		}
	}
	alive := c.Nodes[2]
	waitFor(t, 15*time.Second, "the lone node and the balancer to turn unready", func() bool {
		code, body := httpsGet(t, alive.HTTPAddr, "/readyz", "")
		bcode, _ := httpsGet(t, b.HTTPAddr, "/readyz", "")
		return code == 503 && strings.Contains(body, "no leader") && bcode == 503
	})
	for _, n := range down {
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every node and the balancer to be ready again", func() bool {
		for _, addr := range []string{c.Nodes[0].HTTPAddr, c.Nodes[1].HTTPAddr, c.Nodes[2].HTTPAddr, b.HTTPAddr} {
			if code, _ := httpsGet(t, addr, "/readyz", ""); code != 200 {
				return false
			}
		}
		return true
	})
}

// gaugeValue is a gauge's value in addr's /metrics (-1: absent).
func gaugeValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	f := metricsOf(t, addr)[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return -1
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}
