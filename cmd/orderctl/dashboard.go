package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// dashboardCmd serves a process's operator's page on loopback, presenting
// this client's certificate to its side port (as `kubectl proxy` does):
// a browser needs no certificate of its own.
func dashboardCmd(g *globals) *cobra.Command {
	var target, listen string
	cmd := &cobra.Command{
		Use:   "dashboard --target HOST:PORT [--listen 127.0.0.1:8080]",
		Short: "open the operator's page of a node or balancer (its --http-addr) in a browser without a certificate",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.dashboard(ctx, target, listen)
		},
	}
	cmd.Flags().StringVar(&target, "target", "127.0.0.1:8000", "side port (--http-addr) of a node or the balancer; make run's balancer by default")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "where the browser connects: a loopback address (anyone reaching it reads with your certificate)")
	return cmd
}

func (g *globals) dashboard(ctx context.Context, target, listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %s: must be a loopback address: whoever reaches it reads the cluster with your certificate", listen)
	}
	scheme, transport, err := g.sidePort(target)
	if err != nil {
		return err
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: scheme, Host: target})
	proxy.Transport = transport
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	srv := &http.Server{Handler: pageOnly(ln.Addr().String(), proxy), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(g.Out, "operator's page of %s at http://%s/ (Ctrl-C stops)\n", target, ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}

// pageOnly lets through what the operator's page needs (GET of /, /ui/
// and /api/cluster), and only for requests addressed to the dashboard
// itself: a page of another site that a browser sends here (DNS
// rebinding: Host is that site's name) gets nothing, and /metrics and
// /debug/pprof are never forwarded with the operator's certificate.
func pageOnly(addr string, next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(addr)
	hosts := map[string]bool{addr: true, "localhost:" + port: true, "127.0.0.1:" + port: true, "[::1]:" + port: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts[r.Host] {
			http.Error(w, fmt.Sprintf("dashboard: Host %q is not this dashboard (%s)", r.Host, addr), http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet || !(r.URL.Path == "/" || r.URL.Path == "/api/cluster" || strings.HasPrefix(r.URL.Path, "/ui/")) {
			http.Error(w, "dashboard: only the operator's page is served here", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}
