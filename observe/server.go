// Package observe is the HTTP side port of orderd and orderlb
// (--http-addr): Prometheus metrics (orderly's own and hashicorp/raft's,
// bridged into the same registry), liveness and readiness, pprof, and the
// operator's page (/, with its data at /api/cluster).
//
// With TLS the port is HTTPS. /livez and /readyz answer anyone (they say
// only ok or why not, for load balancers and orchestrators); /metrics,
// the page and /api/cluster need a client certificate of the cluster (any
// role; a browser without one goes through `orderctl dashboard`),
// /debug/pprof an admin's (a CPU profile costs the process). Without TLS
// (--insecure) everything answers everyone.
package observe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"orderly/api"
	"orderly/pki"
	"orderly/wire"
)

// Process is what a daemon tells its side port about itself.
type Process struct {
	// Ready says whether the process should get traffic; an error says
	// why not (it is the body of /readyz's 503).
	Ready func() error
	// Status is the process's own status (its lines become metrics at
	// each scrape); Members, the status of every member of the cluster
	// (the page's table), may be nil.
	Status  func() wire.StatusInfo
	Members func(ctx context.Context) []wire.StatusInfo
	// Orders, if set, counts the orders the page charts (a node: those it
	// applied); else the orders this process answered.
	Orders func() uint64
	// Shards and ShardStatus, if set, are the cluster's shard map and the
	// status of one node's replica of a shard (the page's shards table; a
	// cluster of one shard has none).
	Shards      func(ctx context.Context) (wire.ShardMap, error)
	ShardStatus func(ctx context.Context, node string, shard uint32) (wire.StatusInfo, error)
}

// Options configure the side port.
type Options struct {
	Process
	Addr     string
	TLS      *pki.Source // nil: plaintext (--insecure)
	Registry *prometheus.Registry
	// API, if set, serves /v1/ (package api); it checks its callers itself.
	API http.Handler
	// Requests are the process's request metrics (the page's charts).
	Requests *Requests
	Logger   hclog.Logger
	// MaxConns and MaxConnsPerSource bound the port's connections (0:
	// DefaultMaxConns, DefaultMaxConnsPerSource).
	MaxConns, MaxConnsPerSource int
}

// Server is a running side port.
type Server struct {
	opt    Options
	srv    *http.Server
	ln     net.Listener
	hist   *history
	bounds *connBounds
	cancel context.CancelFunc
	done   chan struct{} // closed when the server and the history stopped
}

// Start listens on opt.Addr and serves until Close.
func Start(opt Options) (*Server, error) {
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", opt.Addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := opt.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	secure := opt.TLS != nil
	mux.Handle("/metrics", needRole(secure, anyRole, promhttp.HandlerFor(opt.Registry, promhttp.HandlerOpts{
		ErrorLog: opt.Logger.Named("metrics").StandardLogger(&hclog.StandardLoggerOptions{}), Registry: opt.Registry})))
	mux.Handle("/debug/pprof/", needRole(secure, adminOnly, http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", needRole(secure, adminOnly, http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", needRole(secure, adminOnly, http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", needRole(secure, adminOnly, http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", needRole(secure, adminOnly, http.HandlerFunc(pprof.Trace)))
	orders := opt.Orders
	if orders == nil {
		orders = opt.Requests.ordersAnswered
	}
	s := &Server{opt: opt, ln: ln, done: make(chan struct{}), hist: newHistory(opt.Status, orders, opt.Requests.orderHistogram),
		bounds: newConnBounds(opt.MaxConns, opt.MaxConnsPerSource)}
	opt.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orderly_http_conns",
		Help: "Open connections of the HTTP side port."}, func() float64 { return float64(s.bounds.conns()) }))
	opt.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orderly_http_conns_refused_total",
		Help: "Side port connections closed at once: past --http-max-conns or --http-max-conns-per-source."},
		func() float64 { return float64(s.bounds.refused.Load()) }))
	if opt.API != nil {
		mux.Handle("/v1/", opt.API)
	}
	s.servePage(mux, func(h http.Handler) http.Handler { return needRole(secure, anyRole, h) })
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      2 * time.Minute, // a 30 s CPU profile fits
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnState:         s.bounds.state,
		ConnContext:       api.ConnContext,
		ErrorLog:          opt.Logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{}),
	}
	if secure {
		s.srv.TLSConfig = opt.TLS.HTTPServerConfig()
		ln = tls.NewListener(ln, s.srv.TLSConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	histDone := make(chan struct{})
	go func() {
		defer close(histDone)
		s.hist.run(ctx)
	}()
	go func() {
		defer close(s.done)
		defer func() { <-histDone }()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opt.Logger.Error("http side port stopped", "error", err)
		}
	}()
	opt.Logger.Info("http side port listening", "addr", s.Addr(), "tls", secure)
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving and waits for the server's goroutine.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.cancel()
	<-s.done
	return err
}

func anyRole(wire.Role) bool     { return true }
func adminOnly(r wire.Role) bool { return r == wire.RoleAdmin }

// needRole lets a request through only with a verified client
// certificate whose role may; without TLS everything passes.
func needRole(secure bool, may func(wire.Role) bool, h http.Handler) http.Handler {
	if !secure {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "a client certificate of the cluster is needed", http.StatusUnauthorized)
			return
		}
		id, err := pki.IdentityOf(*r.TLS)
		if err != nil {
			http.Error(w, "a client certificate of the cluster is needed", http.StatusUnauthorized)
			return
		}
		if !may(id.Role) {
			http.Error(w, fmt.Sprintf("role %s may not read %s", id.Role, r.URL.Path), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
