package raftnode

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orderly/group"
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
	regular := func() uint64 { r, _, _ := n.ordersApplied(); return r }
	custom := func() uint64 { _, c, _ := n.ordersApplied(); return c }
	dups := func() uint64 { _, _, d := n.ordersApplied(); return d }
	const rounds = "ReadIndex rounds run (as leader: confirm leadership with a quorum; as follower: ask the leader)."
	const reads = "Linearizable reads served by ReadIndex rounds; reads per round = reads / rounds."
	return []prometheus.Collector{
		counter("orderly_orders_applied_total", "Orders this replica applied since it started, by laptop type.", prometheus.Labels{"type": "regular"}, regular),
		counter("orderly_orders_applied_total", "Orders this replica applied since it started, by laptop type.", prometheus.Labels{"type": "custom"}, custom),
		counter("orderly_orders_duplicate_total", "Retried orders answered from their session, not applied again.", nil, dups),
		counter("orderly_read_index_rounds_total", rounds, prometheus.Labels{"as": "leader"}, n.sum(func(g *group.Group) uint64 { return g.ReadIndexRounds(true) })),
		counter("orderly_read_index_rounds_total", rounds, prometheus.Labels{"as": "follower"}, n.sum(func(g *group.Group) uint64 { return g.ReadIndexRounds(false) })),
		counter("orderly_read_index_reads_total", reads, prometheus.Labels{"as": "leader"}, n.sum(func(g *group.Group) uint64 { return g.ReadIndexReads(true) })),
		counter("orderly_read_index_reads_total", reads, prometheus.Labels{"as": "follower"}, n.sum(func(g *group.Group) uint64 { return g.ReadIndexReads(false) })),
		counter("orderly_raft_entries_proposed_total", "Raft entries of orders this node proposed as leader; orders per entry = orders / entries.", nil, n.sum((*group.Group).EntriesProposed)),
		counter("orderly_orders_proposed_total", "Orders this node proposed as leader, packed into entries.", nil, n.sum((*group.Group).OrdersProposed)),
		shardCollector{n},
		n.store.appendSeconds,
		n.snapMetrics.seconds, n.snapMetrics.bytes,
	}
}

// ordersApplied sums the orders the replicas of the shards on this node
// applied since it started (of a cluster of one shard: its meta group's).
// A replica that moves away takes its counts along: the sum may fall.
func (n *Node) ordersApplied() (regular, custom, duplicates uint64) {
	for _, r := range n.dataReplicas() {
		a, b, c := r.group.FSM().OrdersApplied()
		regular, custom, duplicates = regular+a, custom+b, duplicates+c
	}
	return regular, custom, duplicates
}

// sum is f summed over the groups of the shards on this node.
func (n *Node) sum(f func(*group.Group) uint64) func() uint64 {
	return func() uint64 {
		var total uint64
		for _, r := range n.dataReplicas() {
			total += f(r.group)
		}
		return total
	}
}

// shardCollector exports each replica of a shard on this node with a
// shard label (replicas come and go with moves, so it describes nothing
// ahead: an unchecked collector).
type shardCollector struct{ n *Node }

var (
	shardLeaderDesc  = prometheus.NewDesc("orderly_shard_leader", "1 if this node leads the shard, 0 if it holds a replica that does not lead.", []string{"shard"}, nil)
	shardAppliedDesc = prometheus.NewDesc("orderly_shard_applied_index", "The Raft index this node's replica of the shard has applied.", []string{"shard"}, nil)
	shardOrdersDesc  = prometheus.NewDesc("orderly_shard_orders_applied_total", "Orders this node's replica of the shard applied since it opened.", []string{"shard"}, nil)
)

func (shardCollector) Describe(chan<- *prometheus.Desc) {}

func (c shardCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.count < 2 {
		return
	}
	for _, r := range c.n.dataReplicas() {
		id := strconv.FormatUint(uint64(r.shard), 10)
		leads := 0.0
		if r.group.IsLeader() {
			leads = 1
		}
		a, b, _ := r.group.FSM().OrdersApplied()
		ch <- prometheus.MustNewConstMetric(shardLeaderDesc, prometheus.GaugeValue, leads, id)
		ch <- prometheus.MustNewConstMetric(shardAppliedDesc, prometheus.GaugeValue, float64(r.group.FSM().AppliedIndex()), id)
		ch <- prometheus.MustNewConstMetric(shardOrdersDesc, prometheus.CounterValue, float64(a+b), id)
	}
}
