package raftnode

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestLogStoreReopens: each store, closed, opens again in the same process
// with what was written (orderd --restore seeds the store, closes it and
// starts the node on it; raft-wal's own Close kept its meta database
// locked, and the second open hung), and keeps the store it was made with;
// its wrapper tells Raft whether it allows gaps.
func TestLogStoreReopens(t *testing.T) {
	for _, kind := range []string{StoreWAL, StoreBoltDB} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			db, got, err := openLogStore(dir, kind, hclog.NewNullLogger())
			if err != nil || got != kind {
				t.Fatalf("open new %s: %v %q", kind, err, got)
			}
			watched := &watchedLogStore{LogStore: db}
			if got, want := watched.IsMonotonic(), kind == StoreWAL; got != want {
				t.Fatalf("watched %s store: IsMonotonic %v, want %v (raft-wal allows no gap)", kind, got, want)
			}
			if err := db.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			if err := db.StoreLogs([]*raft.Log{{Index: 11, Term: 7, Data: []byte("x")}}); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, got, err = openLogStore(dir, "", hclog.NewNullLogger())
			if err != nil || got != kind {
				t.Fatalf("reopen: %v %q", err, got)
			}
			defer db.Close()
			if term, err := db.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
				t.Fatalf("term after reopen: %d %v", term, err)
			}
			var l raft.Log
			if err := db.GetLog(11, &l); err != nil || string(l.Data) != "x" {
				t.Fatalf("log 11 after reopen: %v %+v", err, l)
			}
		})
	}
}

// TestWALReopensAfterTailTruncation: Raft clears a log suffix (a follower
// whose tail a new leader overrides), the node crashes, and the WAL must
// open and read again. raft-wal v0.4.0 sealed the segment without its
// index and failed with "sealed segment has no index block" (chaos found
// it after restart-all; hashicorp/raft-wal#31, fixed in v0.4.1).
func TestWALReopensAfterTailTruncation(t *testing.T) {
	dir := t.TempDir()
	db, _, err := openLogStore(dir, StoreWAL, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Data: []byte{byte(i)}})
	}
	if err := db.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRange(15, 20); err != nil {
		t.Fatal(err)
	}
	if err := db.StoreLogs([]*raft.Log{{Index: 15, Term: 2, Data: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _, err = openLogStore(dir, "", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var l raft.Log
	for _, i := range []uint64{1, 14, 15} {
		if err := db.GetLog(i, &l); err != nil {
			t.Fatalf("log %d after the truncated tail and a reopen: %v", i, err)
		}
	}
	if string(l.Data) != "new" || l.Term != 2 {
		t.Fatalf("log 15 is %+v, want the new term's", l)
	}
	if last, _ := db.LastIndex(); last != 15 {
		t.Fatalf("last index %d, want 15", last)
	}
}
