package raftnode

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// Log stores (--log-store). BoltDB commits each append with two fsyncs
// (the data pages, then the meta page); hashicorp/raft-wal, Consul's newer
// store, appends to a segment file with one. A data dir keeps the store it
// was created with.
const (
	StoreBoltDB = "boltdb"
	StoreWAL    = "wal"
	// DefaultLogStore is the store of a new data dir: the WAL, for its
	// one fsync per append (2.0-2.8x the writes of BoltDB at one client,
	// docs/performance.md). Data dirs made before it stay on BoltDB.
	DefaultLogStore = StoreWAL
)

const (
	walDir      = "wal"      // raft-wal's segments and meta database
	walLockFile = "wal.lock" // held while a node has the WAL open
	// walSegmentSize: raft-wal preallocates each segment file; 16 MiB
	// (its default is 64) keeps a small data dir from filling at once.
	walSegmentSize = 16 << 20
)

// logStore is Raft's log and stable store of a data dir.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// storeOf says which log store dir holds ("" if none).
func storeOf(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, raftDBFile)); err == nil {
		return StoreBoltDB
	}
	if _, err := os.Stat(filepath.Join(dir, walDir)); err == nil {
		return StoreWAL
	}
	return ""
}

// openLogStore opens the data dir's log store: the one it holds, or want
// ("" for DefaultLogStore) in a new data dir. Asking for another store
// than the data dir holds is an error: a node changes store only by being
// replaced (deploy/README.md).
func openLogStore(dir, want string, log hclog.Logger) (logStore, string, error) {
	kind := storeOf(dir)
	switch {
	case kind == "" && want == "":
		kind = DefaultLogStore
	case kind == "":
		kind = want
	case want != "" && want != kind:
		return nil, "", fmt.Errorf("data dir %s holds a %s log store, not %s: --log-store chooses the store of a new data dir; replace the node to change it", dir, kind, want)
	}
	switch kind {
	case StoreBoltDB:
		db, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, raftDBFile),
			BoltOptions: &bbolt.Options{Timeout: lockTimeout}})
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, "", fmt.Errorf("%w: %s (its log store stayed locked for %v)", ErrDataDirInUse, dir, lockTimeout)
		}
		if err != nil {
			return nil, "", fmt.Errorf("open log store %s: %w", dir, err)
		}
		return db, kind, nil
	case StoreWAL:
		s, err := openWAL(dir, log)
		return s, kind, err
	}
	return nil, "", fmt.Errorf("--log-store %q: want %s or %s", kind, StoreWAL, StoreBoltDB)
}

// walStore is raft-wal with orderly's lock on the data dir: raft-wal's
// meta database would wait for a second process forever. (v0.4.2 at
// least: v0.4.0's Close left the meta database locked, so orderd
// --restore hung reopening it, and it could not reopen a log whose tail
// Raft had truncated after a crash, hashicorp/raft-wal#31.)
type walStore struct {
	*wal.WAL
	lock *os.File
}

func openWAL(dir string, log hclog.Logger) (*walStore, error) {
	lock, err := lockFile(filepath.Join(dir, walLockFile))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, walDir), 0o750); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	w, err := wal.Open(filepath.Join(dir, walDir), wal.WithSegmentSize(walSegmentSize), wal.WithLogger(log))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	return &walStore{WAL: w, lock: lock}, nil
}

// lockFile takes an exclusive flock on path within lockTimeout.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(lockTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: %s (its log store stayed locked for %v)", ErrDataDirInUse, filepath.Dir(path), lockTimeout)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close closes the WAL, then lets the data dir go.
func (s *walStore) Close() error {
	err := s.WAL.Close()
	s.lock.Close() // closing the file drops the flock
	return err
}
