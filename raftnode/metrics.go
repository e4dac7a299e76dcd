package raftnode

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of a node beyond its status lines (which observe exports as
// they are): histograms, and counters whose ratio matters (reads per
// ReadIndex round, orders per Raft entry). They are kept whether or not
// a side port serves them; a histogram observation costs tens of ns.

// durationBuckets suit disk and snapshot times, 100 µs to 10 s.
var durationBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 13)

func newAppendHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderly_log_append_duration_seconds",
		Help: "Time of one write to the Raft log store: a BoltDB transaction with its fsync.", Buckets: durationBuckets})
}

// snapshotMetrics are told of each snapshot the FSM writes.
type snapshotMetrics struct {
	seconds prometheus.Histogram
	bytes   prometheus.Gauge
}

func newSnapshotMetrics() *snapshotMetrics {
	return &snapshotMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderly_snapshot_duration_seconds",
			Help: "Time to write one snapshot of the state machine.", Buckets: durationBuckets}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderly_snapshot_size_bytes",
			Help: "Size of the last snapshot of the state machine written."}),
	}
}

func (m *snapshotMetrics) persisted(bytes uint64, took time.Duration) {
	m.seconds.Observe(took.Seconds())
	m.bytes.Set(float64(bytes))
}

// Collectors are the node's own metrics, for a Prometheus registry.
func (n *Node) Collectors() []prometheus.Collector {
	counter := func(name, help string, labels prometheus.Labels, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	regular := func() uint64 { r, _, _ := n.fsm.OrdersApplied(); return r }
	custom := func() uint64 { _, c, _ := n.fsm.OrdersApplied(); return c }
	dups := func() uint64 { _, _, d := n.fsm.OrdersApplied(); return d }
	const rounds = "ReadIndex rounds run (as leader: confirm leadership with a quorum; as follower: ask the leader)."
	const reads = "Linearizable reads served by ReadIndex rounds; reads per round = reads / rounds."
	return []prometheus.Collector{
		counter("orderly_orders_applied_total", "Orders this replica applied since it started, by laptop type.", prometheus.Labels{"type": "regular"}, regular),
		counter("orderly_orders_applied_total", "Orders this replica applied since it started, by laptop type.", prometheus.Labels{"type": "custom"}, custom),
		counter("orderly_orders_duplicate_total", "Retried orders answered from their session, not applied again.", nil, dups),
		counter("orderly_read_index_rounds_total", rounds, prometheus.Labels{"as": "leader"}, func() uint64 { return n.group.ReadIndexRounds(true) }),
		counter("orderly_read_index_rounds_total", rounds, prometheus.Labels{"as": "follower"}, func() uint64 { return n.group.ReadIndexRounds(false) }),
		counter("orderly_read_index_reads_total", reads, prometheus.Labels{"as": "leader"}, func() uint64 { return n.group.ReadIndexReads(true) }),
		counter("orderly_read_index_reads_total", reads, prometheus.Labels{"as": "follower"}, func() uint64 { return n.group.ReadIndexReads(false) }),
		counter("orderly_raft_entries_proposed_total", "Raft entries of orders this node proposed as leader; orders per entry = orders / entries.", nil, n.group.EntriesProposed),
		counter("orderly_orders_proposed_total", "Orders this node proposed as leader, packed into entries.", nil, n.group.OrdersProposed),
		n.store.appendSeconds,
		n.snapMetrics.seconds, n.snapMetrics.bytes,
	}
}
