// Command orderctl is the orderly command-line client: one-shot orders and
// reads, cluster status, membership and leadership. The load generator
// and the chaos test are ordertest.
//
//	orderctl [--addr a,b,c] [--json] [--timeout D] COMMAND [flags]
//
// $ORDERLY_ENDPOINTS sets the addresses when --addr is not given (like
// etcdctl's $ETCDCTL_ENDPOINTS).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"orderly/client"
	"orderly/internal/cli"
)

// exitUnknownOutcome is the exit status of a write that may have been
// applied (client.ErrUnknownOutcome); 1 is any other error.
const exitUnknownOutcome = 3

// globals are the flags every command takes, and the output.
type globals struct{ cli.Globals }

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "orderctl:", err)
		if errors.Is(err, client.ErrUnknownOutcome) {
			os.Exit(exitUnknownOutcome)
		}
		os.Exit(1)
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{cli.Globals{Out: stdout}}
	root := &cobra.Command{
		Use:           "orderctl",
		Short:         "orderly's command-line client",
		Long:          "orderctl places orders and reads records on an orderly cluster, and shows and changes its membership.\nAddresses: --addr, else $" + cli.EndpointsEnv + ", else make run's nodes.",
		SilenceUsage:  true, // an error says what is wrong; -h shows the flags
		SilenceErrors: true, // main prints it once
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.AddFlags(root.PersistentFlags())
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.Resolve() }
	root.AddCommand(orderCmd(g), getCmd(g), scanCmd(g), statusCmd(g), membersCmd(g), alarmCmd(g), watchCmd(g), snapshotCmd(g), dashboardCmd(g), healthCmd(g), transferCmd(g), certsCmd(g), shardsCmd(g))
	return root
}

// newClient is a client of --addr with the global flags' timeouts and TLS,
// writing as id (0: a random one).
func (g *globals) newClient(id uint64) (*client.Client, error) {
	return client.New(client.Options{Addrs: g.Addrs, RetryTimeout: g.Timeout, DialTimeout: g.DialTimeout, TLS: g.ClientTLS(), ClientID: id})
}

// withClient runs fn with a client of the cluster and a context bounded by
// --timeout.
func (g *globals) withClient(fn func(ctx context.Context, c *client.Client) error) error {
	return g.withClientID(0, fn)
}

// withClientID is withClient writing as client id (0: a random one).
func (g *globals) withClientID(id uint64, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := g.newClient(id)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout+time.Second)
	defer cancel()
	return fn(ctx, c)
}
