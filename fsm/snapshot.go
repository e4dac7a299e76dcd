package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/google/btree"
	"github.com/hashicorp/raft"
)

// Snapshot format, version 4, big-endian (version 3 lacks the shard map,
// and is what a state without one is written as, so that a release that
// reads version 3 takes it during a rolling upgrade; version 2 lacks the
// limits and lists sessions by client id; version 1 also lacks the
// members' command version, read as 1):
//
//	magic "ORDSNAP\x00" | uint32 version
//	int64 now | int64 swept | uint64 applied
//	uint8 limits_set | uint32 max_sessions | int64 evict_idle   (version 3)
//	uint64 n | n records  (int32 id, int32 last_order, uint64 count, int8 type, uint64 last_index)
//	uint64 n | n sessions, least recently written first
//	                      (uint64 client, uint64 seq, int64 seen, result:
//	                       int32 customer, int32 number, uint8 type, int32 engineer,
//	                       int32 expert, uint64 index, uint64 order_count)
//	uint32 n | n members  (uint16 len, id, uint16 len, addr, uint16 version)
//	uint32 n | n shards   (uint32 id, uint64 epoch, uint64 term, uint16 len, leader,
//	                       uint8 n, n replicas (uint16 len, id, uint8 voter))   (version 4)
//	uint32 CRC-32C of everything above
const (
	snapMagic   = "ORDSNAP\x00"
	snapVersion = 4
)

// ErrCorruptSnapshot means a snapshot failed its checks; nothing was restored.
var ErrCorruptSnapshot = errors.New("fsm: corrupt snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type sessionEntry struct {
	ClientID uint64
	session
}

type snapshot struct {
	now, swept  int64
	applied     uint64
	limitsSet   bool
	maxSessions uint32
	evictIdle   time.Duration
	records     *btree.BTreeG[Record] // a clone: the FSM's own goes on (records.go)
	sessions    []sessionEntry
	members     []SetMember
	shards      []SetShard
	persisted   func(bytes uint64, took time.Duration) // Options.SnapshotPersisted
}

// Persist streams the snapshot into the sink; on error it cancels the sink
// so raft never keeps a partial snapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	cw := &countingWriter{w: sink}
	if err := s.writeTo(cw); err != nil {
		sink.Cancel() //nolint:errcheck // the write error is the one to report
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot: close sink: %w", err)
	}
	if s.persisted != nil {
		s.persisted(cw.n, time.Since(start))
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// Release is a no-op: the records' clone is the garbage collector's once
// dropped; the rest are copies.
func (s *snapshot) Release() {}

func (s *snapshot) writeTo(w io.Writer) error {
	h := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	be := binary.BigEndian
	b := make([]byte, 0, 64)
	b = append(b, snapMagic...)
	version := uint32(snapVersion)
	if len(s.shards) == 0 {
		version = 3
	}
	b = be.AppendUint32(b, version)
	b = be.AppendUint64(b, uint64(s.now))
	b = be.AppendUint64(b, uint64(s.swept))
	b = be.AppendUint64(b, s.applied)
	limits := byte(0)
	if s.limitsSet {
		limits = 1
	}
	b = be.AppendUint32(append(b, limits), s.maxSessions)
	b = be.AppendUint64(b, uint64(s.evictIdle))
	b = be.AppendUint64(b, uint64(s.records.Len()))
	bw.Write(b) //nolint:errcheck // bufio keeps the first error for Flush
	s.records.Ascend(func(r Record) bool {
		b = appendRecord(b[:0], r)
		bw.Write(b) //nolint:errcheck
		return true
	})
	bw.Write(be.AppendUint64(b[:0], uint64(len(s.sessions)))) //nolint:errcheck
	for _, e := range s.sessions {
		b = be.AppendUint64(b[:0], e.ClientID)
		b = be.AppendUint64(b, e.LastSeq)
		b = be.AppendUint64(b, uint64(e.LastSeen))
		bw.Write(appendResult(b, e.Result)) //nolint:errcheck
	}
	bw.Write(be.AppendUint32(b[:0], uint32(len(s.members)))) //nolint:errcheck
	for _, m := range s.members {
		bw.Write(be.AppendUint16(appendString(appendString(b[:0], m.ID), m.ClientAddr), m.Version)) //nolint:errcheck
	}
	if version >= 4 {
		bw.Write(be.AppendUint32(b[:0], uint32(len(s.shards)))) //nolint:errcheck
		for _, sh := range s.shards {
			bw.Write(AppendSetShard(b[:0], sh)[1:]) //nolint:errcheck // the command's fields, without its type byte
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(be.AppendUint32(nil, h.Sum32()))
	return err
}

func appendRecord(b []byte, r Record) []byte {
	be := binary.BigEndian
	b = be.AppendUint32(b, uint32(r.CustomerID))
	b = be.AppendUint32(b, uint32(r.LastOrder))
	b = be.AppendUint64(b, r.OrderCount)
	b = append(b, byte(r.LastLaptopType))
	return be.AppendUint64(b, r.LastIndex)
}

func appendResult(b []byte, r OrderResult) []byte {
	be := binary.BigEndian
	b = be.AppendUint32(b, uint32(r.CustomerID))
	b = be.AppendUint32(b, uint32(r.OrderNumber))
	b = append(b, r.LaptopType)
	b = be.AppendUint32(b, uint32(r.EngineerID))
	b = be.AppendUint32(b, uint32(r.ExpertID))
	b = be.AppendUint64(b, r.Index)
	return be.AppendUint64(b, r.OrderCount)
}

// Restore replaces the state with a snapshot. It builds the new state
// aside and swaps it in only after every check passed, so a corrupt
// snapshot leaves the FSM as it was.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	f.st = st
	if f.changes != nil {
		f.changes.Restored(st.applied)
	}
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
	return nil
}

// snapReader reads fields and hashes every byte it reads.
type snapReader struct {
	r   *bufio.Reader
	h   hash.Hash32
	buf [64]byte
	err error
}

func (r *snapReader) take(n int) []byte {
	if r.err != nil {
		return r.buf[:n]
	}
	if _, err := io.ReadFull(r.r, r.buf[:n]); err != nil {
		r.err = fmt.Errorf("%w: truncated: %v", ErrCorruptSnapshot, err)
		return r.buf[:n]
	}
	r.h.Write(r.buf[:n])
	return r.buf[:n]
}

func (r *snapReader) u8() uint8   { return r.take(1)[0] }
func (r *snapReader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *snapReader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *snapReader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *snapReader) i32() int32  { return int32(r.u32()) }

func (r *snapReader) str() string {
	n := int(binary.BigEndian.Uint16(r.take(2)))
	s := make([]byte, 0, n)
	for n > 0 && r.err == nil {
		k := min(n, len(r.buf))
		s = append(s, r.take(k)...)
		n -= k
	}
	return string(s)
}

func (r *snapReader) result() OrderResult {
	return OrderResult{CustomerID: r.i32(), OrderNumber: r.i32(), LaptopType: r.u8(),
		EngineerID: r.i32(), ExpertID: r.i32(), Index: r.u64(), OrderCount: r.u64()}
}

func readSnapshot(in io.Reader) (*state, error) {
	r := &snapReader{r: bufio.NewReaderSize(in, 64<<10), h: crc32.New(castagnoli)}
	if string(r.take(len(snapMagic))) != snapMagic {
		return nil, fmt.Errorf("%w: not an orderly snapshot (bad magic)", ErrCorruptSnapshot)
	}
	v := r.u32()
	if r.err == nil && (v < 1 || v > snapVersion) {
		return nil, fmt.Errorf("%w: version %d, this build reads 1 to %d", ErrCorruptSnapshot, v, snapVersion)
	}
	st := newState()
	st.now, st.swept, st.applied = int64(r.u64()), int64(r.u64()), r.u64()
	if v >= 3 {
		switch r.u8() {
		case 0:
		case 1:
			st.limitsSet = true
		default:
			return nil, fmt.Errorf("%w: bad limits flag", ErrCorruptSnapshot)
		}
		st.maxSessions, st.evictIdle = r.u32(), time.Duration(r.u64())
	}
	for n, last := r.u64(), int32(-1); n > 0 && r.err == nil; n-- {
		rec := Record{CustomerID: r.i32(), LastOrder: r.i32(), OrderCount: r.u64(),
			LastLaptopType: int8(r.u8()), LastIndex: r.u64()}
		if rec.CustomerID <= last {
			return nil, fmt.Errorf("%w: records out of order at customer %d", ErrCorruptSnapshot, rec.CustomerID)
		}
		last = rec.CustomerID
		st.records.ReplaceOrInsert(rec)
	}
	for n := r.u64(); n > 0 && r.err == nil; n-- {
		id := r.u64()
		s := &session{LastSeq: r.u64(), LastSeen: int64(r.u64()), Result: r.result(), id: id}
		if _, dup := st.sessions[id]; dup {
			return nil, fmt.Errorf("%w: session %d twice", ErrCorruptSnapshot, id)
		}
		if st.lru.tail != nil && s.LastSeen < st.lru.tail.LastSeen && v >= 3 {
			return nil, fmt.Errorf("%w: sessions out of order at client %d", ErrCorruptSnapshot, id)
		}
		st.sessions[id] = s
		st.lru.pushBack(s)
	}
	if v < 3 { // listed by client id: into eviction order
		st.normalizeSessionOrder()
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		id := r.str()
		st.members[id] = r.str()
		if v >= 2 {
			st.versions[id] = r.u16()
		}
	}
	if v >= 4 {
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			sh := SetShard{ID: r.u32(), Epoch: r.u64(), Term: r.u64(), Leader: r.str()}
			reps := int(r.u8())
			if reps > MaxShardReplicas {
				return nil, fmt.Errorf("%w: shard %d with %d replicas", ErrCorruptSnapshot, sh.ID, reps)
			}
			for range reps {
				rep := ShardReplica{ID: r.str()}
				switch r.u8() {
				case 0:
				case 1:
					rep.Voter = true
				default:
					return nil, fmt.Errorf("%w: bad voter flag in shard %d", ErrCorruptSnapshot, sh.ID)
				}
				sh.Replicas = append(sh.Replicas, rep)
			}
			if _, dup := st.shards[sh.ID]; dup {
				return nil, fmt.Errorf("%w: shard %d twice", ErrCorruptSnapshot, sh.ID)
			}
			st.shards[sh.ID] = sh
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	want := r.h.Sum32()
	var trailer [4]byte
	if _, err := io.ReadFull(r.r, trailer[:]); err != nil {
		return nil, fmt.Errorf("%w: missing checksum: %v", ErrCorruptSnapshot, err)
	}
	if got := binary.BigEndian.Uint32(trailer[:]); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, computed %08x", ErrCorruptSnapshot, got, want)
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: bytes after the checksum", ErrCorruptSnapshot)
	}
	return st, nil
}
