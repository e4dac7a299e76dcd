// Command ordertest holds orderly's test tools, apart from orderctl so
// that the everyday client needs neither the plotting library nor the
// chaos harness:
//
//	ordertest bench  the load generator (the seed's client with better numbers)
//	ordertest chaos  a Jepsen-style run: a cluster it starts, faults, checks
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"orderly/internal/cli"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ordertest:", err)
		os.Exit(1)
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &cli.Globals{Out: stdout}
	root := &cobra.Command{
		Use:           "ordertest",
		Short:         "orderly's load generator and chaos test",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.AddFlags(root.PersistentFlags())
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.Resolve() }
	root.AddCommand(benchCmd(g), chaosCmd(g))
	return root
}
