package raftnode

import (
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"orderly/faults"
	"orderly/wire"
)

// watchedLogStore is the log store under raft's cache. It remembers
// whether the last write failed (a full disk: the node then takes no part
// in writes until one succeeds again), so status can say so, and logs the
// change once rather than at every retry. In faults builds it can be made
// slow (the slow-disk nemesis).
type watchedLogStore struct {
	raft.LogStore
	log     hclog.Logger
	failing atomic.Bool
	// nospace: the failing write's error was ENOSPC (the disk alarm).
	nospace atomic.Bool
	errors  atomic.Uint64
	// appendSeconds times each write (a BoltDB transaction and its fsync).
	appendSeconds prometheus.Histogram
}

func (s *watchedLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s *watchedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := faults.BeforeLogWrite(s)
	if err == nil {
		err = s.LogStore.StoreLogs(logs)
	}
	s.appendSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		s.errors.Add(1)
		s.nospace.Store(isNoSpace(err))
		if !s.failing.Swap(true) {
			s.log.Error("log store write failed: this node takes no part in writes until a write succeeds again",
				"first_index", logs[0].Index, "entries", len(logs), "error", err)
		}
		return err
	}
	s.nospace.Store(false)
	if s.failing.Swap(false) {
		s.log.Info("log store writes succeed again", "first_index", logs[0].Index)
	}
	return nil
}

// IsMonotonic passes the store's answer on (raft.MonotonicLogStore): Raft
// asks the store under its cache, and the wrapper would otherwise hide
// that raft-wal allows no gap in its log.
func (s *watchedLogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// noSpace says whether the last write failed for want of space.
func (s *watchedLogStore) noSpace() bool { return s.nospace.Load() }

// isNoSpace: bolt passes the file system's error up, wrapped or not.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device")
}

// stats are the store's lines in status.
func (s *watchedLogStore) stats() []wire.Stat {
	failing := uint64(0)
	if s.failing.Load() {
		failing = 1
	}
	return []wire.Stat{{Name: "log_write_failing", Value: failing}, {Name: "log_write_errors", Value: s.errors.Load()}}
}
