// Command orderctl is the orderly command-line client: one-shot orders and
// reads, cluster status and membership, and the load generator.
//
//	orderctl [--addr a,b,c] [--json] [--timeout D] COMMAND [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"orderly/client"
)

// globals are the flags before the command.
type globals struct {
	addrs   []string
	json    bool
	timeout time.Duration
	out     io.Writer
}

type command struct {
	name, usage string
	run         func(ctx context.Context, g *globals, c *client.Client, args []string) error
}

var commands = []command{
	{"order", "place an order: order --customer C --number N [--type regular|custom]", runOrder},
	{"get", "read a record: get --customer C [--consistency linearizable|session|stale]", runGet},
	{"scan", "list records: scan [--from C] [--limit L] [--consistency ...]", runScan},
	{"status", "describe a node: status [--all]", runStatus},
	{"members", "membership: members list | add --id ID --raft-addr A [--nonvoter] | remove --id ID", runMembers},
	{"transfer-leader", "hand leadership over: transfer-leader [--to ID]", runTransfer},
	{"chaos", "failure injection with a linearizability checker: chaos [--duration D] [--seed N] [--nemesis kill-leader,kill,pause,partition,member|all] [--report DIR]", runChaos},
	{"bench", "load generator: bench --customers C --orders N --type regular|custom|mixed [--reads PCT] [--consistency L] [--duration D] [--pipeline P] [--conns K] [--json FILE] [--timeline FILE]", runBench},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orderctl:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	g := &globals{out: stdout}
	fs := flag.NewFlagSet("orderctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:6001,127.0.0.1:6002,127.0.0.1:6003", "node or balancer addresses, comma-separated; any that answers is used")
	fs.BoolVar(&g.json, "json", false, "machine-readable JSON output")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Second, "give up on a command (with its retries) after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: orderctl [--addr a,b] [--json] [--timeout D] COMMAND [flags]\n\nglobal flags:")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\ncommands:")
		for _, c := range commands {
			fmt.Fprintf(stderr, "  %-16s %s\n", c.name, c.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	for _, a := range strings.Split(*addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			g.addrs = append(g.addrs, a)
		}
	}
	name := fs.Arg(0)
	for _, cmd := range commands {
		if cmd.name != name {
			continue
		}
		c, err := client.New(client.Options{Addrs: g.addrs, RetryTimeout: g.timeout})
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout+time.Second)
		defer cancel()
		return cmd.run(ctx, g, c, fs.Args()[1:])
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", name)
}

// subFlags is a FlagSet for a command that reports errors instead of exiting.
func subFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseSub(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %v", fs.Name(), fs.Args())
	}
	return nil
}
