package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthCmd asks a side port's /readyz (or /livez): for compose
// healthchecks and systemd's ExecStartPost, in images with no curl.
func healthCmd(g *globals) *cobra.Command {
	var target string
	var live bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "health --target HOST:PORT [--live] [--wait D]",
		Short: "exit 0 if a node or balancer is ready (/readyz of its --http-addr), else say why and exit 1",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path := "/readyz"
			if live {
				path = "/livez"
			}
			deadline := time.Now().Add(wait)
			for {
				msg, err := g.probe(target, path)
				if err == nil {
					fmt.Fprintln(g.Out, msg)
					return nil
				}
				if time.Now().After(deadline) {
					return err
				}
				time.Sleep(500 * time.Millisecond)
			}
		},
	}
	cmd.Flags().StringVar(&target, "target", "127.0.0.1:8000", "side port (--http-addr) of a node or the balancer")
	cmd.Flags().BoolVar(&live, "live", false, "ask /livez (the process serves) instead of /readyz (it should get traffic)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "keep asking this long until the answer is yes")
	return cmd
}

// sidePort is how to reach a side port (--http-addr) at target: https
// with this client's certificate, checking the server's against the CA;
// http with --insecure.
func (g *globals) sidePort(target string) (scheme string, tr *http.Transport, err error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return "", nil, fmt.Errorf("--target %s: %w", target, err)
	}
	scheme, tr = "http", http.DefaultTransport.(*http.Transport).Clone()
	if tlsFor := g.ClientTLS(); tlsFor != nil {
		scheme, tr.TLSClientConfig = "https", tlsFor(host)
	}
	return scheme, tr, nil
}

// probe GETs path on target (/readyz and /livez answer anyone).
func (g *globals) probe(target, path string) (string, error) {
	scheme, tr, err := g.sidePort(target)
	if err != nil {
		return "", err
	}
	cl := &http.Client{Timeout: g.Timeout, Transport: tr}
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+target+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s%s: %w", target, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s%s: %d %s", target, path, resp.StatusCode, msg)
	}
	return msg, nil
}
