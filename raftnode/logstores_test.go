package raftnode

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestLogStoreReopens: each store, closed, opens again in the same process
// with what was written (orderd --restore seeds the store, closes it and
// starts the node on it; raft-wal's own Close kept its meta database
// locked, and the second open hung), and keeps the store it was made with.
func TestLogStoreReopens(t *testing.T) {
	for _, kind := range []string{StoreWAL, StoreBoltDB} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			db, got, err := openLogStore(dir, kind, hclog.NewNullLogger())
			if err != nil || got != kind {
				t.Fatalf("open new %s: %v %q", kind, err, got)
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
