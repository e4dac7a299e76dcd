// Package cli is what orderly's command-line tools (orderctl, ordertest)
// share: the flags every command takes (--addr with $ORDERLY_ENDPOINTS,
// --json, --timeout, --dial-timeout) and printing text or JSON.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EndpointsEnv names the environment variable that sets --addr (like
// etcdctl's $ETCDCTL_ENDPOINTS).
const EndpointsEnv = "ORDERLY_ENDPOINTS"

// DefaultAddrs are make run's nodes.
const DefaultAddrs = "127.0.0.1:6001,127.0.0.1:6002,127.0.0.1:6003"

// Globals are the flags every command takes, before or after its name.
type Globals struct {
	addr        string
	Addrs       []string // set by Resolve
	JSON        bool
	Timeout     time.Duration
	DialTimeout time.Duration
	Out         io.Writer
}

// AddFlags registers the global flags on fs (a root command's persistent
// flags).
func (g *Globals) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&g.addr, "addr", "", "node or balancer addresses, comma-separated; any that answers is used (default $"+EndpointsEnv+", else "+DefaultAddrs+")")
	fs.BoolVar(&g.JSON, "json", false, "machine-readable JSON output")
	fs.DurationVar(&g.Timeout, "timeout", 10*time.Second, "give up on a call (with its retries) after this long")
	fs.DurationVar(&g.DialTimeout, "dial-timeout", 2*time.Second, "give up sooner when no address answers at all")
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
	return nil
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
