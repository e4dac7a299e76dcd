package observe

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"orderly/wire"
)

// historyLen is how many one-second samples the operator's page charts.
const historyLen = 300

// maxEvents is how many leader changes the page lists.
const maxEvents = 20

// sample is one second of the process's life.
type sample struct {
	At     time.Time
	Orders float64 // orders per second
	P99    float64 // seconds; NaN when no order was answered
}

// event is a leader change this process saw.
type event struct {
	At     time.Time `json:"at"`
	Term   uint64    `json:"term"`
	Leader string    `json:"leader"` // "": none known
}

// history keeps the last minutes of samples and leader changes, taken
// once a second by run. It costs the request path nothing: it reads the
// counters and the Order histogram the metrics already keep.
type history struct {
	status func() wire.StatusInfo
	orders func() uint64         // a counter of orders (applied or answered)
	latest func() *dto.Histogram // the Order latency histogram

	mu          sync.Mutex
	samples     []sample
	events      []event
	lastOrders  uint64
	lastBuckets []uint64
	lastCount   uint64
	lastLeader  string
	lastTerm    uint64
	started     bool
}

func newHistory(status func() wire.StatusInfo, orders func() uint64, hist func() *dto.Histogram) *history {
	return &history{status: status, orders: orders, latest: hist}
}

// run samples every second until ctx ends.
func (h *history) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	h.take(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.take(now)
		}
	}
}

func (h *history) take(now time.Time) {
	st := h.status()
	orders := h.orders()
	hist := h.latest()
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.Term == 0 { // a balancer without a leader knows no term
		st.Term = h.lastTerm
	}
	if st.LeaderID != h.lastLeader || st.Term != h.lastTerm {
		h.events = append(h.events, event{At: now, Term: st.Term, Leader: st.LeaderID})
		if len(h.events) > maxEvents {
			h.events = h.events[1:]
		}
		h.lastLeader, h.lastTerm = st.LeaderID, st.Term
	}
	var buckets []uint64
	var count uint64
	if hist != nil {
		count = hist.GetSampleCount()
		for _, b := range hist.GetBucket() {
			buckets = append(buckets, b.GetCumulativeCount())
		}
	}
	if h.started {
		s := sample{At: now, Orders: float64(orders - h.lastOrders), P99: math.NaN()}
		if orders < h.lastOrders {
			s.Orders = 0
		}
		if hist != nil && len(buckets) == len(h.lastBuckets) && count > h.lastCount {
			s.P99 = quantile(0.99, hist.GetBucket(), buckets, h.lastBuckets, count-h.lastCount)
		}
		h.samples = append(h.samples, s)
		if len(h.samples) > historyLen {
			h.samples = h.samples[1:]
		}
	}
	h.started, h.lastOrders, h.lastBuckets, h.lastCount = true, orders, buckets, count
}

// quantile estimates the q-quantile of the observations between two
// readings of a histogram, interpolating inside the bucket it falls in
// (as Prometheus' histogram_quantile does).
func quantile(q float64, bounds []*dto.Bucket, now, before []uint64, n uint64) float64 {
	rank := q * float64(n)
	lower, below := 0.0, 0.0
	for i, b := range bounds {
		in := float64(now[i] - before[i])
		if in >= rank {
			frac := (rank - below) / math.Max(in-below, 1)
			return lower + (b.GetUpperBound()-lower)*frac
		}
		lower, below = b.GetUpperBound(), in
	}
	return lower // beyond the last bound
}

// view is what the page charts.
func (h *history) view() (samples []sample, events []event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sample(nil), h.samples...), append([]event(nil), h.events...)
}

// orderHistogram reads the Order latency histogram of r.
func (r *Requests) orderHistogram() *dto.Histogram {
	var m dto.Metric
	o, ok := r.observer(wire.TypeOrder, 3).(prometheus.Metric)
	if !ok || o.Write(&m) != nil {
		return nil
	}
	return m.GetHistogram()
}

// ordersAnswered counts the orders r saw answered ok.
func (r *Requests) ordersAnswered() uint64 {
	var m dto.Metric
	c, ok := r.counter(wire.TypeOrder, 0).(prometheus.Metric)
	if !ok || c.Write(&m) != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
