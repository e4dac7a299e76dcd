// Package cli is what orderly's command-line tools (orderctl, ordertest)
// share: the flags every command takes (--addr with $ORDERLY_ENDPOINTS,
// --json, --timeout, --dial-timeout) and printing text or JSON.
package cli

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"orderly/pki"
)

// EndpointsEnv names the environment variable that sets --addr (like
// etcdctl's $ETCDCTL_ENDPOINTS).
const EndpointsEnv = "ORDERLY_ENDPOINTS"

// DefaultAddrs are make run's nodes.
const DefaultAddrs = "127.0.0.1:6001,127.0.0.1:6002,127.0.0.1:6003"

// CertsEnv names the environment variable that sets --certs.
const CertsEnv = "ORDERLY_CERTS"

// DefaultCerts is where make run keeps its development certificates,
// relative to the repository: orderctl run from there finds them.
const DefaultCerts = "data/certs"

// Globals are the flags every command takes, before or after its name.
type Globals struct {
	addr        string
	Addrs       []string // set by Resolve
	JSON        bool
	Timeout     time.Duration
	DialTimeout time.Duration
	Out         io.Writer

	certs, as, ca, cert, key string
	// Insecure is --insecure: plaintext, no certificate.
	Insecure bool
	// TLS is the client certificate Resolve found; nil with --insecure.
	TLS *pki.Source
}

// AddFlags registers the global flags on fs (a root command's persistent
// flags).
func (g *Globals) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&g.addr, "addr", "", "node or balancer addresses, comma-separated; any that answers is used (default $"+EndpointsEnv+", else "+DefaultAddrs+")")
	fs.BoolVar(&g.JSON, "json", false, "machine-readable JSON output")
	fs.DurationVar(&g.Timeout, "timeout", 10*time.Second, "give up on a call (with its retries) after this long")
	fs.DurationVar(&g.DialTimeout, "dial-timeout", 2*time.Second, "give up sooner when no address answers at all")
	fs.StringVar(&g.certs, "certs", "", "directory of certificates made by 'orderctl certs' (default $"+CertsEnv+", else ./"+DefaultCerts+", make run's)")
	fs.StringVar(&g.as, "as", "orderctl", "which certificate of --certs to present: NAME.crt and NAME.key (its role decides what you may do)")
	fs.StringVar(&g.ca, "ca", "", "CA bundle (instead of --certs)")
	fs.StringVar(&g.cert, "cert", "", "client certificate (instead of --certs)")
	fs.StringVar(&g.key, "key", "", "client key (instead of --certs)")
	fs.BoolVar(&g.Insecure, "insecure", false, "plaintext, no certificate: for clusters run with --insecure (ordertest chaos: run its cluster so)")
}

// resolveTLS finds the client certificate: --ca/--cert/--key, else NAME
// (--as) in --certs, $ORDERLY_CERTS or make run's directory.
func (g *Globals) resolveTLS() error {
	explicit := g.ca != "" || g.cert != "" || g.key != ""
	if g.Insecure {
		if explicit || g.certs != "" {
			return fmt.Errorf("--insecure with certificate flags: choose one")
		}
		return nil
	}
	files := pki.Files{CA: g.ca, Cert: g.cert, Key: g.key}
	if !explicit {
		dir := g.certs
		if dir == "" {
			dir = os.Getenv(CertsEnv)
		}
		if dir == "" {
			dir = DefaultCerts
		}
		files = pki.InDir(dir, g.as)
		if _, err := os.Stat(files.Cert); err != nil {
			return fmt.Errorf("no client certificate %s: orderly clusters speak mutual TLS; point --certs or $%s at a directory made by `orderctl certs` (make run makes ./%s), or pass --insecure for a plaintext cluster", files.Cert, CertsEnv, DefaultCerts)
		}
	} else if g.ca == "" || g.cert == "" || g.key == "" {
		return fmt.Errorf("--ca, --cert and --key go together")
	}
	src, err := pki.Load(files, nil)
	if err != nil {
		return err
	}
	g.TLS = src
	return nil
}

// ClientTLS is what client.Options.TLS wants: nil with --insecure.
func (g *Globals) ClientTLS() func(string) *tls.Config {
	if g.TLS == nil {
		return nil
	}
	return g.TLS.ClientConfig
}

// Resolve sets Addrs from --addr, else $ORDERLY_ENDPOINTS, else make run's
// nodes.
func (g *Globals) Resolve() error {
	raw := g.addr
	if raw == "" {
		raw = os.Getenv(EndpointsEnv)
	}
	if raw == "" {
		raw = DefaultAddrs
	}
	g.Addrs = nil
	for _, a := range strings.Split(raw, ",") {
		if a = strings.TrimSpace(a); a != "" {
			g.Addrs = append(g.Addrs, a)
		}
	}
	if len(g.Addrs) == 0 {
		return fmt.Errorf("no addresses in %q", raw)
	}
	return g.resolveTLS()
}

// Print writes v as JSON with --json, else the formatted text.
func (g *Globals) Print(v any, format string, args ...any) error {
	if g.JSON {
		enc := json.NewEncoder(g.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintf(g.Out, format, args...)
	return err
}
