// Package seed builds big states for benchmarks: backups holding many
// customers, one order and one client session each, made by applying
// real orders to the state machine in process, so that a cluster of that
// size starts in seconds (orderd --restore) instead of the minutes that
// placing the orders through the network would take.
package seed

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"orderly/backup"
	"orderly/fsm"
	"orderly/shard"
)

// State is a state machine's snapshot and the index it stands for.
type State struct {
	Snapshot  []byte
	Index     uint64
	Customers int
}

// Build applies one order of each customer in ids, packed into entries
// as a leader would, and snapshots the state.
func Build(ids []int32) (State, error) {
	f := fsm.New(fsm.Options{})
	now := time.Now().UnixNano()
	batch := make([]fsm.PlaceOrder, 0, fsm.MaxOrdersPerEntry)
	index := uint64(0)
	flush := func() error {
		index++
		res := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: fsm.AppendPlaceOrders(nil, batch)})
		if err, ok := res.(error); ok {
			return fmt.Errorf("apply entry %d: %w", index, err)
		}
		batch = batch[:0]
		return nil
	}
	for _, c := range ids {
		batch = append(batch, fsm.PlaceOrder{CustomerID: c, OrderNumber: 1, EngineerID: c % 16, ExpertID: -1,
			ClientID: uint64(c)<<1 | 1, Seq: 1, LeaderTime: now})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return State{}, err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return State{}, err
		}
	}
	snap, err := f.Snapshot()
	if err != nil {
		return State{}, err
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		return State{}, err
	}
	// An empty state still stands for an index: a backup's is at least 1.
	return State{Snapshot: sink.Bytes(), Index: max(index, 1), Customers: f.Summary().Customers}, nil
}

// WriteBackup writes s as a backup file to w.
func WriteBackup(w io.Writer, s State) error {
	bw, err := backup.NewWriter(w, backup.Meta{Index: s.Index, Term: 1, Created: time.Now(), Size: uint64(len(s.Snapshot))})
	if err != nil {
		return err
	}
	if _, err := bw.Write(s.Snapshot); err != nil {
		return err
	}
	return bw.Close()
}

// ShardIDs are the first n customer ids (from 0 up) that shard id of a
// cluster of shards holds.
func ShardIDs(id, shards uint32, n int) []int32 {
	out := make([]int32, 0, n)
	for c := int32(0); len(out) < n; c++ {
		if shard.Of(c, shards) == id {
			out = append(out, c)
		}
	}
	return out
}

// WriteBundle writes the backup of a sharded cluster to path: an empty
// meta group, and shard i holding perShard[i] customers.
func WriteBundle(path string, perShard []int) ([]State, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bw, err := backup.NewBundleWriter(f, len(perShard))
	if err != nil {
		return nil, err
	}
	meta, err := Build(nil)
	if err != nil {
		return nil, err
	}
	states := []State{meta}
	for i, n := range perShard {
		s, err := Build(ShardIDs(uint32(i), uint32(len(perShard)), n))
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		states = append(states, s)
	}
	for _, s := range states {
		var b bytes.Buffer
		if err := WriteBackup(&b, s); err != nil {
			return nil, err
		}
		sec, err := bw.Next(int64(b.Len()))
		if err != nil {
			return nil, err
		}
		if _, err := sec.Write(b.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	return states[1:], f.Sync()
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) Close() error  { return nil }
func (s *memSink) ID() string    { return "seed" }
func (s *memSink) Cancel() error { return nil }
