package observe

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"time"

	"orderly/wire"
)

// The operator's page (/): static files embedded in the binary (no
// external scripts or fonts: there may be no network), which poll
// /api/cluster every second.

//go:embed ui
var uiFiles embed.FS

// memberView is one member as the page shows it.
type memberView struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Role      string `json:"role"` // leader, follower, candidate, ... or unreachable
	Term      uint64 `json:"term"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	Last      uint64 `json:"last"`
	Lag       uint64 `json:"lag"` // commit - applied
	DiskAlarm bool   `json:"disk_alarm"`
	Error     string `json:"error,omitempty"`
}

type backendView struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Up     bool   `json:"up"`
	Leader bool   `json:"leader"`
}

type balancerView struct {
	CacheHits   uint64        `json:"cache_hits"`
	CacheMisses uint64        `json:"cache_misses"`
	HitRate     float64       `json:"hit_rate"` // 0..1 since start
	Backends    []backendView `json:"backends"`
}

type seriesView struct {
	Start  time.Time  `json:"start"` // of the first sample; one a second
	Orders []float64  `json:"orders_per_second"`
	P99    []*float64 `json:"p99_ms"` // null: no order answered that second
}

// clusterView is /api/cluster.
type clusterView struct {
	Self     string        `json:"self"`
	Kind     string        `json:"kind"` // node or balancer
	At       time.Time     `json:"at"`
	Leader   string        `json:"leader"`
	Term     uint64        `json:"term"`
	Members  []memberView  `json:"members"`
	Alarms   int           `json:"alarms"`
	Events   []event       `json:"events"`
	Series   seriesView    `json:"series"`
	Balancer *balancerView `json:"balancer,omitempty"`
	Shards   []shardView   `json:"shards,omitempty"` // a sharded cluster's
	// OrdersSource says what the orders chart counts.
	OrdersSource string `json:"orders_source"`
}

func statValue(st wire.StatusInfo, name string) (uint64, bool) {
	for _, s := range st.Stats {
		if s.Name == name {
			return s.Value, true
		}
	}
	return 0, false
}

func (s *Server) clusterView(ctx context.Context) clusterView {
	self := s.opt.Status()
	v := clusterView{Self: self.ID, Kind: "node", At: time.Now(), Leader: self.LeaderID, Term: self.Term,
		OrdersSource: "orders applied per second (every replica applies every order)"}
	if self.Role == "balancer" {
		v.Kind, v.OrdersSource = "balancer", "orders answered per second by this balancer"
		hits, _ := statValue(self, "cache_hits")
		misses, _ := statValue(self, "cache_misses")
		b := &balancerView{CacheHits: hits, CacheMisses: misses}
		if hits+misses > 0 {
			b.HitRate = float64(hits) / float64(hits+misses)
		}
		for _, m := range self.Members {
			up, _ := statValue(self, "backend_up "+m.ClientAddr)
			b.Backends = append(b.Backends, backendView{ID: m.ID, Addr: m.ClientAddr, Up: up == 1, Leader: m.ClientAddr == self.LeaderAddr})
		}
		v.Balancer = b
	}
	if n, ok := statValue(self, "cluster_alarms"); ok {
		v.Alarms = int(n)
	}
	mctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	shards := make(chan []shardView, 1)
	go func() { shards <- s.shardsView(mctx) }() // beside the members' statuses, within the same time
	if s.opt.Members != nil {
		for _, st := range s.opt.Members(mctx) {
			m := memberView{ID: st.ID, Addr: st.LeaderAddr, Role: st.Role, Term: st.Term, Commit: st.CommitIndex,
				Applied: st.AppliedIndex, Last: st.LastIndex}
			if st.CommitIndex > st.AppliedIndex {
				m.Lag = st.CommitIndex - st.AppliedIndex
			}
			if a, _ := statValue(st, "disk_alarm"); a == 1 {
				m.DiskAlarm = true
			}
			for _, mem := range self.Members {
				if mem.ID == st.ID {
					m.Addr = mem.ClientAddr
				}
			}
			if st.Role == "leader" && v.Kind == "balancer" {
				v.Leader, v.Term = st.ID, st.Term
			}
			v.Members = append(v.Members, m)
		}
	}
	samples, events := s.hist.view()
	v.Events = events
	if len(samples) > 0 {
		v.Series.Start = samples[0].At
	}
	for _, x := range samples {
		v.Series.Orders = append(v.Series.Orders, x.Orders)
		if math.IsNaN(x.P99) {
			v.Series.P99 = append(v.Series.P99, nil)
		} else {
			ms := x.P99 * 1000
			v.Series.P99 = append(v.Series.P99, &ms)
		}
	}
	v.Shards = <-shards
	return v
}

func (s *Server) servePage(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	static, _ := fs.Sub(uiFiles, "ui")
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", guard(files))
	mux.Handle("GET /ui/", guard(http.StripPrefix("/ui/", files)))
	mux.Handle("GET /api/cluster", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(s.clusterView(r.Context())) //nolint:errcheck // the client went away
	})))
}
