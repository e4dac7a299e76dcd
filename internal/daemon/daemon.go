// Package daemon is what orderd and orderlb share around their own work:
// the logging, TLS, bounds and side-port flags, and a foreground life that
// ends cleanly on SIGINT or SIGTERM.
package daemon

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"orderly/api"
	"orderly/faults"
	"orderly/observe"
	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// Flags are the flags every orderly daemon has.
type Flags struct {
	level *string
	json  *bool
	http  *string

	httpMaxConns, httpMaxPerSource *int

	apiMaxWatchers, apiMaxWatchersPerClient *int
	apiRate                                 *float64

	ca, cert, key *string
	insecure      *bool
	tls           *pki.Source // loaded by TLS; reloaded on SIGHUP
}

// AddFlags registers --log-level, --log-json, --http-addr and the TLS
// flags (--ca, --cert, --key, --insecure) on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		http:         fs.String("http-addr", "", "HTTP side port: the /v1/ API, /metrics, /livez, /readyz, /debug/pprof, the page (HTTPS with the same certificates; empty: off)"),
		httpMaxConns: fs.Int("http-max-conns", observe.DefaultMaxConns, "most connections the HTTP side port keeps open; past it new ones are closed at once"),
		httpMaxPerSource: fs.Int("http-max-conns-per-source", observe.DefaultMaxConnsPerSource,
			"most side port connections of one source address; one without a client certificate is closed after 5 s idle"),
		apiMaxWatchers: fs.Int("http-max-watchers", api.DefaultMaxWatchers, "most /v1/watch streams the HTTP side port serves at once"),
		apiMaxWatchersPerClient: fs.Int("http-max-watchers-per-client", api.DefaultMaxWatchersPerClient,
			"most /v1/watch streams of one client certificate"),
		apiRate:  fs.Float64("http-rate-limit", 0, "API calls per second one client certificate may start on the HTTP side port; past it 429 (0: no limit)"),
		level:    fs.String("log-level", "info", "log level: trace, debug, info, warn, error"),
		json:     fs.Bool("log-json", false, "log as JSON"),
		ca:       fs.String("ca", "", "CA bundle (PEM) that signs every certificate of the cluster"),
		cert:     fs.String("cert", "", "this process's certificate (PEM), made by 'orderctl certs issue'; reloaded when the file changes or on SIGHUP"),
		key:      fs.String("key", "", "the certificate's private key (PEM)"),
		insecure: fs.Bool("insecure", false, "plaintext on every port, no client certificates, no roles: anyone who reaches a port may do anything (tests and trusted labs only)"),
	}
}

// TLS loads the certificate the flags name, or returns nil with
// --insecure, after a warning. Neither is an error that says how to fix it.
func (f *Flags) TLS(log hclog.Logger) (*pki.Source, error) {
	given := *f.ca != "" || *f.cert != "" || *f.key != ""
	switch {
	case *f.insecure && given:
		return nil, errors.New("--insecure with --ca/--cert/--key: choose one")
	case *f.insecure:
		log.Warn("INSECURE: plaintext on every port, no client certificates, no roles; anyone who can reach a port can place orders, change members or forge Raft messages")
		return nil, nil
	case *f.ca == "" || *f.cert == "" || *f.key == "":
		return nil, errors.New("TLS is on by default: give --ca, --cert and --key (make them with orderctl certs init and orderctl certs issue), or --insecure for plaintext")
	}
	src, err := pki.Load(pki.Files{CA: *f.ca, Cert: *f.cert, Key: *f.key}, log.Named("tls"))
	if err != nil {
		return nil, err
	}
	if left := time.Until(src.NotAfter()); left < 30*24*time.Hour {
		log.Warn("certificate expires soon; issue a new one and replace the files (no restart needed)", "not_after", src.NotAfter(), "left", left.Round(time.Hour))
	}
	f.tls = src
	return src, nil
}

// TestFault checks the fault $ORDERLY_TEST_FAULT names (deliberately not
// a flag, and always empty unless the binary was built with -tags
// faults) and warns loudly when one is on.
func TestFault(log hclog.Logger) error {
	f := faults.FromEnv()
	if err := faults.Validate(f); err != nil {
		return fmt.Errorf("$%s: %w", faults.EnvVar, err)
	}
	if f != "" {
		log.Warn("TEST FAULT ACTIVE: this process is broken on purpose", "fault", f)
	}
	return nil
}

// Logger is the hclog logger the flags ask for, on stderr.
func (f *Flags) Logger(name string) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(*f.level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", *f.level)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl, JSONFormat: *f.json, Output: os.Stderr}), nil
}

// Side is the HTTP side port of a daemon (--http-addr): Metrics before the
// node or balancer starts (raft's measurements go to the registry from its
// first), Serve once it runs, Close before it stops. A nil Side (no
// --http-addr) does nothing.
type Side struct {
	addr string
	tls  *pki.Source
	log  hclog.Logger
	reg  *prometheus.Registry
	reqs *observe.Requests
	srv  *observe.Server

	maxConns, maxPerSource int
	apiLimits              api.Limits
}

// Side prepares the side port: a registry with the Go, process and
// hashicorp/raft metrics and orderly's request metrics. Call TLS first.
func (f *Flags) Side(log hclog.Logger) (*Side, error) {
	if *f.http == "" {
		return nil, nil
	}
	if *f.httpMaxConns < 1 || *f.httpMaxPerSource < 1 {
		return nil, fmt.Errorf("--http-max-conns %d, --http-max-conns-per-source %d: need at least 1 each", *f.httpMaxConns, *f.httpMaxPerSource)
	}
	s := &Side{addr: *f.http, tls: f.tls, log: log.Named("http"), reg: observe.NewRegistry(),
		maxConns: *f.httpMaxConns, maxPerSource: *f.httpMaxPerSource,
		apiLimits: api.Limits{MaxWatchers: *f.apiMaxWatchers, MaxWatchersPerClient: *f.apiMaxWatchersPerClient, RatePerClient: *f.apiRate}}
	if *f.apiMaxWatchers < 1 || *f.apiMaxWatchersPerClient < 1 || *f.apiRate < 0 {
		return nil, fmt.Errorf("--http-max-watchers %d, --http-max-watchers-per-client %d, --http-rate-limit %g: need at least 1, 1 and 0",
			*f.apiMaxWatchers, *f.apiMaxWatchersPerClient, *f.apiRate)
	}
	if err := observe.BridgeGoMetrics(s.reg); err != nil {
		return nil, err
	}
	s.reqs = observe.NewRequests(s.reg)
	return s, nil
}

// Observe is serve.Options.Observe for the daemon's server (nil without
// a side port).
func (s *Side) Observe() func(req wire.Message, took time.Duration, resp wire.Message) {
	if s == nil {
		return nil
	}
	return s.reqs.Observe
}

// Serve starts the side port: readiness, status's numbers as metrics at
// each scrape, the process's own metrics (collectors), the operator's
// page, and the /v1/ API onto backend.
func (s *Side) Serve(p observe.Process, backend api.Backend, collectors ...prometheus.Collector) error {
	if s == nil {
		return nil
	}
	observe.RegisterStatus(s.reg, p.Status)
	for _, c := range collectors {
		if err := s.reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	gw := api.New(api.Options{Backend: backend, Secure: s.tls != nil, Limits: s.apiLimits, Logger: s.log.Named("api")})
	srv, err := observe.Start(observe.Options{Process: p, API: gw, Addr: s.addr, TLS: s.tls, Registry: s.reg, Requests: s.reqs, Logger: s.log,
		MaxConns: s.maxConns, MaxConnsPerSource: s.maxPerSource})
	if err != nil {
		return err
	}
	s.srv = srv
	return nil
}

// Close stops the side port.
func (s *Side) Close() {
	if s == nil || s.srv == nil {
		return
	}
	if err := s.srv.Close(); err != nil {
		s.log.Warn("http side port close", "error", err)
	}
}

// Run calls start and waits for SIGINT or SIGTERM (SIGHUP reloads the
// TLS files); then it calls the stop func that start returned.
func Run(f *Flags, log hclog.Logger, start func() (stop func() error, err error)) error {
	stop, err := start()
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	for s := range sig {
		if s != syscall.SIGHUP {
			log.Info("shutting down", "signal", s.String())
			break
		}
		if f.tls == nil {
			log.Info("SIGHUP: nothing to reload (--insecure)")
			continue
		}
		if err := f.tls.Reload(); err != nil {
			log.Error("SIGHUP: cannot reload TLS files; keeping the old ones", "error", err)
		}
	}
	return stop()
}

// FrameFlag registers --max-frame: parsed as a 64-bit number so that a
// value past 32 bits is refused, never truncated.
func FrameFlag(fs *flag.FlagSet, def uint32) func() (uint32, error) {
	v := fs.Uint64("max-frame", uint64(def), "largest frame in bytes")
	return func() (uint32, error) {
		if *v > math.MaxUint32 {
			return 0, fmt.Errorf("--max-frame %d: must fit in 32 bits", *v)
		}
		return uint32(*v), nil
	}
}

// SizeFlag registers a flag of bytes that takes a unit: 256MiB, 1GiB,
// 500kB, or a plain number of bytes.
func SizeFlag(fs *flag.FlagSet, name string, def uint64, usage string) *uint64 {
	v := def
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, formatSize(def)), func(s string) error {
		n, err := ParseSize(s)
		v = n
		return err
	})
	return &v
}

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

// ParseSize reads a size with SizeFlag's units.
func ParseSize(s string) (uint64, error) {
	mult := uint64(1)
	num := strings.TrimSpace(s)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || (n > 0 && n > math.MaxUint64/mult) {
		return 0, fmt.Errorf("size %q: want a number of bytes, or one with a unit (KiB, MiB, GiB, kB, MB, GB)", s)
	}
	return n * mult, nil
}

func formatSize(n uint64) string {
	for _, u := range sizeUnits[:4] {
		if n >= u.mult && n%u.mult == 0 && n/u.mult < 1024 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// BoundsFlags registers the flags of serve.Bounds that orderd and orderlb
// share: --max-conns, --max-conns-per-client, --idle-timeout, --frame-timeout,
// --handshake-timeout, --max-inflight, --max-reply-bytes, --rate-limit.
func BoundsFlags(fs *flag.FlagSet, b *serve.Bounds) {
	fs.IntVar(&b.MaxConns, "max-conns", b.MaxConns, "open connections per listener; past it new ones are refused (busy)")
	fs.IntVar(&b.MaxConnsPerClient, "max-conns-per-client", b.MaxConnsPerClient, "open connections of one client certificate per listener; past it its new ones are refused (busy); nodes and balancers are not bounded")
	fs.DurationVar(&b.IdleTimeout, "idle-timeout", b.IdleTimeout, "close a client connection silent this long (or that takes no reply this long)")
	fs.DurationVar(&b.FrameTimeout, "frame-timeout", b.FrameTimeout, "close a connection whose frame body does not arrive this long after its length")
	fs.DurationVar(&b.HandshakeTimeout, "handshake-timeout", b.HandshakeTimeout, "close a connection that has not finished its TLS and orderly handshakes this long after it was accepted")
	fs.IntVar(&b.MaxInFlight, "max-inflight", b.MaxInFlight, "requests in progress per client connection; past it the connection is not read (backpressure)")
	fs.Int64Var(&b.MaxReplyBytes, "max-reply-bytes", b.MaxReplyBytes, "bytes of replies a client connection has not read yet; past it the connection is not read (backpressure)")
	fs.IntVar(&b.MaxInFlightPerClient, "max-inflight-per-client", b.MaxInFlightPerClient, "requests in progress across all connections of one client certificate; past it they are not read (nodes and balancers are not bounded)")
	fs.Int64Var(&b.MaxFrameMemory, "max-frame-memory", b.MaxFrameMemory, "bytes of big frames (over 64 KiB) being read at once across all connections; past it their readers wait (at most --frame-timeout)")
	fs.IntVar(&b.MaxWatchersPerClient, "max-watchers-per-client", b.MaxWatchersPerClient, "Watch streams one client certificate may hold open per listener; past it a watch is answered Overloaded")
	fs.Int64Var(&b.MaxReplyBytesPerClient, "max-reply-bytes-per-client", b.MaxReplyBytesPerClient, "bytes of replies not yet read across all connections of one client certificate; past it they are not read")
	fs.Float64Var(&b.RateLimit, "rate-limit", b.RateLimit, "requests per second one client (a certificate name, all its connections) may send; past it Overloaded (0: no limit; nodes and balancers are not limited)")
}
