package sharedlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds the writes one transaction takes.
const maxBatch = 4096

// DB is the shared store: one file, one committer.
type DB struct {
	bolt *bolt.DB
	in   chan *write
	done chan struct{} // closed when the committer has stopped

	mu     sync.Mutex // guards closed against sends on in
	closed bool

	commits atomic.Uint64
}

// write is one caller's change, applied in the committer's transaction.
type write struct {
	apply func(*bolt.Tx) error
	err   chan error // buffered
}

// ErrClosed: the store was closed.
var ErrClosed = errors.New("sharedlog: closed")

// Open opens (or creates) the store at path.
func Open(path string) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open shared log %s: %w", path, err)
	}
	db := &DB{bolt: b, in: make(chan *write, maxBatch), done: make(chan struct{})}
	go db.commit()
	return db, nil
}

// Close stops the committer (what waits is answered) and closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.in)
	db.mu.Unlock()
	<-db.done
	return db.bolt.Close()
}

// commit is the committer: it takes every write waiting, applies them
// in one transaction (run) and answers each. Writes that arrive while a
// transaction commits wait for the next: batches grow only while the disk
// is busy.
func (db *DB) commit() {
	defer close(db.done)
	batch := make([]*write, 0, maxBatch)
	for w := range db.in {
		batch = append(batch[:0], w)
	drain:
		for len(batch) < maxBatch {
			select {
			case w, ok := <-db.in:
				if !ok {
					break drain
				}
				batch = append(batch, w)
			default:
				break drain
			}
		}
		db.run(batch)
	}
}

// run applies batch in one transaction; if that fails, each write in one
// of its own, so that one bad write does not fail the others.
func (db *DB) run(batch []*write) {
	db.commits.Add(1)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.err <- err
		}
		return
	}
	for _, w := range batch {
		db.commits.Add(1)
		w.err <- db.bolt.Update(w.apply)
	}
}

// Commits is the number of transactions committed (one fsync each).
func (db *DB) Commits() uint64 { return db.commits.Load() }

// update runs apply in the committer's next transaction and waits until
// it is durable.
func (db *DB) update(apply func(*bolt.Tx) error) error {
	w := &write{apply: apply, err: make(chan error, 1)}
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrClosed
	}
	db.in <- w // under mu: Close cannot close in meanwhile; the committer drains it
	db.mu.Unlock()
	return <-w.err
}

// Group is group id's view of the store: its log and its stable state.
func (db *DB) Group(id uint32) *Store {
	prefix := binary.BigEndian.AppendUint32([]byte{'g'}, id)
	return &Store{db: db, logs: append(prefix[:5:5], 'l'), conf: append(prefix[:5:5], 'c')}
}

// Store is one group's raft.LogStore and raft.StableStore.
type Store struct {
	db         *DB
	logs, conf []byte // bucket names
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

func key(idx uint64) []byte { return binary.BigEndian.AppendUint64(nil, idx) }

// FirstIndex is raft.LogStore's: 0 for an empty log.
func (s *Store) FirstIndex() (uint64, error) { return s.edge(true) }

// LastIndex is raft.LogStore's: 0 for an empty log.
func (s *Store) LastIndex() (uint64, error) { return s.edge(false) }

func (s *Store) edge(first bool) (uint64, error) {
	var idx uint64
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.logs)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, _ := c.Last()
		if first {
			k, _ = c.First()
		}
		if k != nil {
			idx = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return idx, err
}

// GetLog is raft.LogStore's.
func (s *Store) GetLog(idx uint64, l *raft.Log) error {
	return s.db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.logs)
		if b == nil {
			return raft.ErrLogNotFound
		}
		v := b.Get(key(idx))
		if v == nil {
			return raft.ErrLogNotFound
		}
		return decodeLog(v, l)
	})
}

// StoreLog is raft.LogStore's.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs is raft.LogStore's: durable when it returns.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	vals := make([][]byte, len(logs))
	for i, l := range logs {
		vals[i] = encodeLog(l)
	}
	return s.db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(s.logs)
		if err != nil {
			return err
		}
		for i, l := range logs {
			if err := b.Put(key(l.Index), vals[i]); err != nil {
				return fmt.Errorf("store log %d: %w", l.Index, err)
			}
		}
		return nil
	})
}

// DeleteRange is raft.LogStore's: it deletes [min, max].
func (s *Store) DeleteRange(min, max uint64) error {
	return s.db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.logs)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Seek(key(min)); k != nil && binary.BigEndian.Uint64(k) <= max; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Set is raft.StableStore's.
func (s *Store) Set(k, v []byte) error {
	v = append([]byte(nil), v...)
	k = append([]byte(nil), k...)
	return s.db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(s.conf)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
}

// Get is raft.StableStore's: an unknown key is an error, as in
// raft-boltdb ("not found").
func (s *Store) Get(k []byte) ([]byte, error) {
	var out []byte
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(s.conf); b != nil {
			if v := b.Get(k); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err == nil && out == nil {
		return nil, errNotFound
	}
	return out, err
}

// errNotFound says so as raft-boltdb does: hashicorp/raft tells a new
// store by this message.
var errNotFound = errors.New("not found")

// SetUint64 is raft.StableStore's.
func (s *Store) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

// GetUint64 is raft.StableStore's: 0 for an unknown key.
func (s *Store) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	switch {
	case errors.Is(err, errNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, fmt.Errorf("sharedlog: %q holds %d bytes, not a uint64", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// encodeLog: index, term, type, appended-at (Unix ns), then data and
// extensions, each with a uvarint length.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 25+2*binary.MaxVarintLen64+len(l.Data)+len(l.Extensions))
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

var errCorrupt = errors.New("sharedlog: corrupt log entry")

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 25 {
		return errCorrupt
	}
	l.Index = binary.BigEndian.Uint64(b)
	l.Term = binary.BigEndian.Uint64(b[8:])
	l.Type = raft.LogType(b[16])
	at := int64(binary.BigEndian.Uint64(b[17:]))
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	rest := b[25:]
	var err error
	if l.Data, rest, err = field(rest); err != nil {
		return err
	}
	if l.Extensions, rest, err = field(rest); err != nil {
		return err
	}
	if len(rest) != 0 {
		return errCorrupt
	}
	return nil
}

// field reads a uvarint length and that many bytes, copied (bolt's
// memory is valid only in its transaction).
func field(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errCorrupt
	}
	if n == 0 {
		return nil, b[k:], nil
	}
	return append([]byte(nil), b[k:k+int(n)]...), b[k+int(n):], nil
}
