package sharedlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func entry(idx uint64, data string) *raft.Log {
	return &raft.Log{Index: idx, Term: 3, Type: raft.LogCommand, Data: []byte(data), Extensions: []byte{1, 2},
		AppendedAt: time.Unix(1700000000, 42)}
}

// Each group's log and stable state are its own, and both survive a
// reopen.
func TestGroupsKeepTheirOwnLogsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	db := open(t, path)
	a, b := db.Group(1), db.Group(2)
	if err := a.StoreLogs([]*raft.Log{entry(1, "a1"), entry(2, "a2"), entry(3, "a3")}); err != nil {
		t.Fatal(err)
	}
	if err := b.StoreLog(entry(10, "b10")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteRange(3, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	defer db.Close()
	a, b = db.Group(1), db.Group(2)
	for _, c := range []struct {
		s           *Store
		first, last uint64
	}{{a, 1, 2}, {b, 10, 10}, {db.Group(3), 0, 0}} {
		first, err1 := c.s.FirstIndex()
		last, err2 := c.s.LastIndex()
		if err1 != nil || err2 != nil || first != c.first || last != c.last {
			t.Errorf("first %d last %d (%v, %v), want %d and %d", first, last, err1, err2, c.first, c.last)
		}
	}
	var l raft.Log
	if err := a.GetLog(2, &l); err != nil || string(l.Data) != "a2" || l.Term != 3 || l.Type != raft.LogCommand ||
		!bytes.Equal(l.Extensions, []byte{1, 2}) || !l.AppendedAt.Equal(time.Unix(1700000000, 42)) {
		t.Errorf("entry 2 of group 1: %+v, %v", l, err)
	}
	if err := a.GetLog(3, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Errorf("a deleted entry: %v, want ErrLogNotFound", err)
	}
	if err := b.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Errorf("group 2 reads group 1's entry: %v", err)
	}
	if v, err := a.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Errorf("group 1's term: %d, %v", v, err)
	}
	if v, err := b.GetUint64([]byte("CurrentTerm")); err != nil || v != 0 {
		t.Errorf("group 2's term: %d, %v, want 0 (never set)", v, err)
	}
	if _, err := b.Get([]byte("x")); err == nil || err.Error() != "not found" {
		t.Errorf("an unknown key: %v, want \"not found\" as hashicorp/raft expects", err)
	}
}

// Appends of many groups that wait at once share transactions (fsyncs).
func TestConcurrentAppendsShareCommits(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "shared.db"))
	defer db.Close()
	const groups, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for g := range uint32(groups) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := db.Group(g)
			for i := range uint64(each) {
				if err := s.StoreLog(entry(i+1, fmt.Sprint(g))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for g := range uint32(groups) {
		if last, err := db.Group(g).LastIndex(); err != nil || last != each {
			t.Fatalf("group %d: last index %d, %v", g, last, err)
		}
	}
	if c := db.Commits(); c >= groups*each {
		t.Fatalf("%d appends took %d commits: none shared", groups*each, c)
	} else {
		t.Logf("%d appends of %d groups in %d commits", groups*each, groups, c)
	}
}

// After Close, writes fail with ErrClosed instead of hanging.
func TestClosedStoreRefusesWrites(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "shared.db"))
	s := db.Group(1)
	db.Close()
	if err := s.StoreLog(entry(1, "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// hashicorp/raft runs on it: a single-node group applies entries, and a
// restart on the reopened file finds them.
func TestRaftRunsOnIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	start := func(db *DB) (*raft.Raft, *countFSM) {
		s := db.Group(5)
		_, tr := raft.NewInmemTransport("a")
		rc := raft.DefaultConfig()
		rc.LocalID = "a"
		rc.Logger = hclog.NewNullLogger()
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		f := &countFSM{}
		r, err := raft.NewRaft(rc, f, s, s, raft.NewInmemSnapshotStore(), tr)
		if err != nil {
			t.Fatal(err)
		}
		return r, f
	}
	db := open(t, path)
	r, _ := start(db)
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a"}}}).Error(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); r.State() != raft.Leader; {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 10 {
		if err := r.Apply([]byte{byte(i)}, 5*time.Second).Error(); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	last := r.LastIndex()
	r.Shutdown().Error()
	db.Close()

	db = open(t, path)
	defer db.Close()
	r, f := start(db)
	defer r.Shutdown()
	if got := r.LastIndex(); got != last {
		t.Fatalf("after a restart the log ends at %d, want %d", got, last)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.n() < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f.n() != 10 {
		t.Fatalf("the restarted group applied %d of 10 entries", f.n())
	}
}

type countFSM struct {
	mu sync.Mutex
	c  int
}

func (f *countFSM) Apply(*raft.Log) any                 { f.mu.Lock(); f.c++; f.mu.Unlock(); return nil }
func (f *countFSM) n() int                              { f.mu.Lock(); defer f.mu.Unlock(); return f.c }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots") }
func (f *countFSM) Restore(io.ReadCloser) error         { return errors.New("no snapshots") }

// A stored entry decodes to what was stored; bytes that are no entry are
// an error, never a panic.
func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog(entry(1, "x")))
	f.Add(encodeLog(&raft.Log{}))
	f.Add([]byte{})
	f.Add(append(encodeLog(entry(9, "y")), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			return
		}
		var m raft.Log
		if err := decodeLog(encodeLog(&l), &m); err != nil || m.Index != l.Index || m.Term != l.Term || m.Type != l.Type ||
			!bytes.Equal(m.Data, l.Data) || !bytes.Equal(m.Extensions, l.Extensions) || !m.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("%+v does not survive encoding: %+v, %v", l, m, err)
		}
	})
}
