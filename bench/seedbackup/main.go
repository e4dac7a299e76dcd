// Command seedbackup writes an orderly backup file holding N customers,
// one order and one client session each (package bench/seed). It seeds
// a cluster of that size in seconds (orderd --restore) to measure
// backups of a big state (docs/operations.md, "Measured"), which placing
// a million orders through the network would take many minutes to build.
// With --shards S it writes the backup of a sharded cluster (a bundle),
// N customers in each shard.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"orderly/bench/seed"
)

func main() {
	customers := flag.Int("customers", 1_000_000, "customers to create (with --shards: in each shard)")
	shards := flag.Int("shards", 1, "shards of the cluster the backup is of (more than 1: a bundle)")
	out := flag.String("out", "seed.backup", "backup file to write")
	flag.Parse()
	if err := run(*customers, *shards, *out); err != nil {
		fmt.Fprintln(os.Stderr, "seedbackup:", err)
		os.Exit(1)
	}
}

func run(customers, shards int, out string) error {
	start := time.Now()
	if shards > 1 {
		per := make([]int, shards)
		for i := range per {
			per[i] = customers
		}
		states, err := seed.WriteBundle(out, per)
		if err != nil {
			return err
		}
		for i, s := range states {
			fmt.Printf("%s shard %d: %d customers at index %d; %d bytes of state\n", out, i, s.Customers, s.Index, len(s.Snapshot))
		}
		fmt.Printf("built in %v\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	ids := make([]int32, customers)
	for i := range ids {
		ids[i] = int32(i)
	}
	s, err := seed.Build(ids)
	if err != nil {
		return err
	}
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := seed.WriteBackup(file, s); err != nil {
		return err
	}
	fmt.Printf("%s: %d customers, one order and one session each, at index %d; %d bytes of state; built in %v\n",
		out, s.Customers, s.Index, len(s.Snapshot), time.Since(start).Round(time.Millisecond))
	return file.Sync()
}
