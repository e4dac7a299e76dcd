// Command seedbackup writes an orderly backup file holding N customers,
// one order and one client session each, built by applying real orders
// to the state machine in process. It seeds a cluster of that size in
// seconds (orderd --restore) to measure backups of a big state
// (docs/operations.md, "Measured"), which placing a million orders
// through the network would take many minutes to build.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"orderly/backup"
	"orderly/fsm"
)

func main() {
	customers := flag.Int("customers", 1_000_000, "customers to create")
	out := flag.String("out", "seed.backup", "backup file to write")
	flag.Parse()
	if err := run(*customers, *out); err != nil {
		fmt.Fprintln(os.Stderr, "seedbackup:", err)
		os.Exit(1)
	}
}

func run(customers int, out string) error {
	f := fsm.New(fsm.Options{})
	now := time.Now().UnixNano()
	batch := make([]fsm.PlaceOrder, 0, fsm.MaxOrdersPerEntry)
	index := uint64(0)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		index++
		res := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: fsm.AppendPlaceOrders(nil, batch)})
		if err, ok := res.(error); ok {
			return fmt.Errorf("apply entry %d: %w", index, err)
		}
		batch = batch[:0]
		return nil
	}
	start := time.Now()
	for c := range customers {
		batch = append(batch, fsm.PlaceOrder{CustomerID: int32(c), OrderNumber: 1, EngineerID: int32(c % 16), ExpertID: -1,
			ClientID: uint64(c)<<1 | 1, Seq: 1, LeaderTime: now})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	snap, err := f.Snapshot()
	if err != nil {
		return err
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		return err
	}
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	defer file.Close()
	w, err := backup.NewWriter(file, backup.Meta{Index: index, Term: 1, Created: time.Now(), Size: uint64(len(sink.b))})
	if err != nil {
		return err
	}
	if _, err := w.Write(sink.b); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	s := f.Summary()
	fmt.Printf("%s: %d customers, %d orders, %d sessions at index %d; %d bytes of state; built in %v\n",
		out, s.Customers, s.Orders, s.Sessions, index, len(sink.b), time.Since(start).Round(time.Millisecond))
	return file.Sync()
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ b []byte }

func (s *memSink) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *memSink) Close() error                { return nil }
func (s *memSink) ID() string                  { return "seed" }
func (s *memSink) Cancel() error               { return nil }
