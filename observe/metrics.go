package observe

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"orderly/wire"
)

// NewRegistry is a registry with the Go runtime's and the process's
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// BridgeGoMetrics sends what hashicorp/raft and raft-boltdb measure
// (go-metrics: commit and apply times, log store writes, replication)
// into reg, named orderly_raft_... . go-metrics has one global sink, so a
// process calls this once.
func BridgeGoMetrics(reg prometheus.Registerer) error {
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Name: "orderly_raft_bridge"})
	if err != nil {
		return fmt.Errorf("raft metrics bridge: %w", err)
	}
	conf := gometrics.DefaultConfig("orderly")
	conf.EnableHostname = false
	conf.EnableHostnameLabel = false
	conf.EnableRuntimeMetrics = false // the Go collector has them
	if _, err := gometrics.NewGlobal(conf, droppingSink{sink}); err != nil {
		return fmt.Errorf("raft metrics bridge: %w", err)
	}
	return nil
}

// droppingSink drops hashicorp/raft's per-RPC and per-heartbeat series
// before the Prometheus sink: a summary observation per heartbeat (and
// every ReadIndex round sends heartbeats) cost 8-9% of a node's CPU under
// linearizable reads; go-metrics' own prefix filter, which joins the key
// into a string and looks it up in a radix tree for every sample, still
// cost 2-3%. orderly's metrics cover what is dropped (ReadIndex rounds,
// the log append histogram, orders and entries proposed); what is kept is
// per batch, per election or per snapshot (docs/performance.md).
type droppingSink struct{ *gmprom.PrometheusSink }

// dropped reports whether key (service name first: orderly.raft...) is a
// per-RPC or per-heartbeat series.
func dropped(key []string) bool {
	if len(key) < 3 || key[1] != "raft" {
		return false
	}
	switch key[2] {
	case "net": // every RPC: decode, enqueue, respond
		return true
	case "verify_leader", "apply": // every ReadIndex round, every entry
		return len(key) == 3
	case "rpc": // every heartbeat and AppendEntries received (storeLogs: orderly_log_append_duration_seconds)
		return len(key) > 3 && (key[3] == "processHeartbeat" || key[3] == "appendEntries")
	case "replication": // every heartbeat sent; per-peer copies of the labelled series
		return len(key) > 3 && (key[3] == "heartbeat" || (key[3] == "appendEntries" && len(key) > 5))
	}
	return false
}

func (s droppingSink) IncrCounter(key []string, v float32) { s.IncrCounterWithLabels(key, v, nil) }

func (s droppingSink) IncrCounterWithLabels(key []string, v float32, l []gometrics.Label) {
	if !dropped(key) {
		s.PrometheusSink.IncrCounterWithLabels(key, v, l)
	}
}

func (s droppingSink) AddSample(key []string, v float32) { s.AddSampleWithLabels(key, v, nil) }

func (s droppingSink) AddSampleWithLabels(key []string, v float32, l []gometrics.Label) {
	if !dropped(key) {
		s.PrometheusSink.AddSampleWithLabels(key, v, l)
	}
}

// Requests measures the requests a server answers (serve.Options.Observe).
// The series of each (type, consistency) and (type, code) are looked up
// once and kept: a label lookup per request cost 10% of linearizable reads
// at 256 clients.
type Requests struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec

	counts [256][16]atomic.Pointer[counterBox] // by type, code (0: ok)
	times  [256][4]atomic.Pointer[observerBox] // by type, consistency (3: none)
}

type counterBox struct{ c prometheus.Counter }
type observerBox struct{ o prometheus.Observer }

// NewRequests registers orderly_requests_total{op,code} and
// orderly_request_duration_seconds{op,consistency} in reg.
func NewRequests(reg prometheus.Registerer) *Requests {
	r := &Requests{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderly_requests_total",
			Help: "Requests answered, by request type and answer (ok or the error code)."}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orderly_request_duration_seconds",
			Help:    "Time from a request read to its answer, by request type and read consistency.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
			[]string{"op", "consistency"}),
	}
	reg.MustRegister(r.total, r.duration)
	return r
}

// Observe records one answered request.
func (r *Requests) Observe(req wire.Message, took time.Duration, resp wire.Message) {
	t, cons := req.Type(), 3
	switch q := req.(type) {
	case wire.Get:
		cons = consIndex(q.Consistency)
	case wire.Scan:
		cons = consIndex(q.Consistency)
	}
	code := 0
	if e, ok := resp.(*wire.Error); ok {
		code = int(e.Code & 15)
	}
	r.counter(t, code).Inc()
	r.observer(t, cons).Observe(took.Seconds())
}

// consIndex is a consistency's slot; 3 (no label) for a bad one.
func consIndex(c wire.Consistency) int {
	if c > wire.Stale {
		return 3
	}
	return int(c)
}

func (r *Requests) counter(t wire.Type, code int) prometheus.Counter {
	p := &r.counts[t][code]
	if b := p.Load(); b != nil {
		return b.c
	}
	label := "ok"
	if code != 0 {
		label = wire.Code(code).String()
	}
	p.CompareAndSwap(nil, &counterBox{r.total.WithLabelValues(t.String(), label)})
	return p.Load().c
}

func (r *Requests) observer(t wire.Type, cons int) prometheus.Observer {
	p := &r.times[t][cons]
	if b := p.Load(); b != nil {
		return b.o
	}
	label := ""
	if cons != 3 {
		label = wire.Consistency(cons).String()
	}
	p.CompareAndSwap(nil, &observerBox{r.duration.WithLabelValues(t.String(), label)})
	return p.Load().o
}

// statusCollector turns a process's Status into metrics at each scrape:
// Raft progress, and every counter of its stats.
type statusCollector struct{ status func() wire.StatusInfo }

// RegisterStatus exports status at each scrape: orderly_term,
// orderly_commit_index, orderly_applied_index, orderly_last_index,
// orderly_apply_lag (commit - applied), orderly_is_leader,
// orderly_has_leader, and each stat as orderly_<name> (a stat named
// "backend_up ADDR" becomes orderly_backend_up{target="ADDR"}).
func RegisterStatus(reg prometheus.Registerer, status func() wire.StatusInfo) {
	reg.MustRegister(statusCollector{status})
}

// Describe sends nothing: the stats are known only at a scrape (an
// unchecked collector).
func (statusCollector) Describe(chan<- *prometheus.Desc) {}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	gauge := func(name, help string, v float64, labels ...string) {
		var names, values []string
		for i := 0; i+1 < len(labels); i += 2 {
			names, values = append(names, labels[i]), append(values, labels[i+1])
		}
		d := prometheus.NewDesc(name, help, names, nil)
		if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, values...); err == nil {
			ch <- m
		}
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge("orderly_term", "Raft term.", float64(st.Term))
	gauge("orderly_commit_index", "Raft commit index.", float64(st.CommitIndex))
	gauge("orderly_applied_index", "Index of the last entry the state machine applied.", float64(st.AppliedIndex))
	gauge("orderly_last_index", "Index of the last entry in the Raft log.", float64(st.LastIndex))
	lag := float64(0)
	if st.CommitIndex > st.AppliedIndex {
		lag = float64(st.CommitIndex - st.AppliedIndex)
	}
	gauge("orderly_apply_lag", "Committed entries not yet applied (commit index - applied index).", lag)
	gauge("orderly_is_leader", "1 if this node leads.", b2f(st.Role == "leader"))
	gauge("orderly_has_leader", "1 if a leader is known.", b2f(st.LeaderID != "" || st.LeaderAddr != ""))
	for _, s := range st.Stats {
		name, target, _ := strings.Cut(s.Name, " ")
		if counter, ok := counterStats[name]; ok {
			if counter != "" {
				d := prometheus.NewDesc(counter, "From status (orderctl status).", nil, nil)
				if m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(s.Value)); err == nil {
					ch <- m
				}
			}
			continue
		}
		v := float64(s.Value)
		if base, ok := strings.CutSuffix(name, "_ms"); ok { // Prometheus' base unit
			name, v = base+"_seconds", v/1000
		}
		name = "orderly_" + sanitize(name)
		if target != "" {
			gauge(name, "From status (orderctl status).", v, "target", target)
		} else {
			gauge(name, "From status (orderctl status).", v)
		}
	}
}

// counterStats are the status lines that count events: exported as
// counters under these names ("": not exported, a metric of its own
// covers it); every other line is a gauge named orderly_<line>.
var counterStats = map[string]string{
	"requests":            "", // orderly_requests_total{op,code}
	"retries":             "orderly_balancer_retries_total",
	"redirects":           "orderly_balancer_redirects_total",
	"failures":            "orderly_balancer_failures_total",
	"orders_turn_expired": "orderly_balancer_orders_turn_expired_total",
	"cache_hits":          "orderly_balancer_cache_hits_total",
	"cache_misses":        "orderly_balancer_cache_misses_total",
	"cache_evictions":     "orderly_balancer_cache_evictions_total",
	"conns_refused":       "orderly_conns_refused_total",
	"sessions_evicted":    "orderly_sessions_evicted_total",
	"log_write_errors":    "orderly_log_write_errors_total",
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
