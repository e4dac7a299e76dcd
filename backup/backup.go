// Package backup is orderly's backup file: a snapshot of the state machine
// taken by the leader (orderctl snapshot save), with the Raft index and
// term it stands for, the members it was taken from, and a SHA-256 of the
// whole file, so that a truncated or altered file is refused before
// anything is restored from it (orderd --restore).
//
// Format, version 1, big-endian:
//
//	magic "ORDERLY-BACKUP\x00\x01" (16 bytes) | uint16 version
//	uint64 index | uint64 term | int64 created (unix ns) | uint64 size
//	uint16 n | n members (uint16 len, id, uint16 len, raft address)
//	size bytes: the state machine's snapshot (fsm's format, CRC'd itself)
//	32 bytes: SHA-256 of everything above
package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"
)

const (
	magic   = "ORDERLY-BACKUP\x00\x01"
	version = 1
	// maxMembers bounds the member list a header may claim.
	maxMembers = 1024
)

// ErrBadFile means the file is not a whole, unaltered orderly backup.
var ErrBadFile = errors.New("not a whole, unaltered orderly backup")

// Member is one member of the cluster the snapshot was taken from.
type Member struct {
	ID, RaftAddr string
}

// Meta describes a backup.
type Meta struct {
	Index, Term uint64 // the last Raft entry the snapshot includes
	Created     time.Time
	Size        uint64 // bytes of state machine snapshot
	Members     []Member
}

func (m Meta) header() ([]byte, error) {
	if len(m.Members) > maxMembers {
		return nil, fmt.Errorf("backup header: %d members, at most %d", len(m.Members), maxMembers)
	}
	b := append([]byte(magic), 0, 0)
	binary.BigEndian.PutUint16(b[len(magic):], version)
	b = binary.BigEndian.AppendUint64(b, m.Index)
	b = binary.BigEndian.AppendUint64(b, m.Term)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Created.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, m.Size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Members)))
	for _, p := range m.Members {
		for _, s := range []string{p.ID, p.RaftAddr} {
			if len(s) > 0xffff {
				return nil, fmt.Errorf("backup header: member field of %d bytes", len(s))
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
	}
	return b, nil
}

// Writer writes a backup: the header, then Size bytes of snapshot, then
// Close appends the checksum.
type Writer struct {
	w       io.Writer
	sum     hash.Hash
	want    uint64
	written uint64
}

// NewWriter writes m's header to w.
func NewWriter(w io.Writer, m Meta) (*Writer, error) {
	h, err := m.header()
	if err != nil {
		return nil, err
	}
	bw := &Writer{w: w, sum: sha256.New(), want: m.Size}
	if _, err := bw.write(h); err != nil {
		return nil, fmt.Errorf("write backup header: %w", err)
	}
	return bw, nil
}

func (w *Writer) write(p []byte) (int, error) {
	w.sum.Write(p)
	return w.w.Write(p)
}

// Write writes snapshot bytes; more than the header's Size is an error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.written+uint64(len(p)) > w.want {
		return 0, fmt.Errorf("backup: %d snapshot bytes, the header says %d", w.written+uint64(len(p)), w.want)
	}
	n, err := w.write(p)
	w.written += uint64(n)
	return n, err
}

// Close checks that Size bytes were written and appends the checksum.
func (w *Writer) Close() error {
	if w.written != w.want {
		return fmt.Errorf("backup: %d snapshot bytes written, the header says %d", w.written, w.want)
	}
	if _, err := w.w.Write(w.sum.Sum(nil)); err != nil {
		return fmt.Errorf("write backup checksum: %w", err)
	}
	return nil
}

// File is a verified backup file, open for reading its snapshot.
type File struct {
	Meta
	f          *os.File
	dataOffset int64
	owned      bool // f is this file's own (not a bundle's)
}

// Open reads and verifies the backup at path: the whole file is read
// once to check its checksum before Snapshot gives any of it out.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open backup: %w", err)
	}
	bf, err := verify(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return bf, nil
}

func verify(f *os.File, path string) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", path, err)
	}
	bf, err := verifyFile(bufio.NewReader(f), f, 0, st.Size(), path)
	if err != nil {
		return nil, err
	}
	bf.owned = true
	return bf, nil
}

// verifyFile reads a backup file of size bytes from r and checks it: its
// header against its size, its checksum against its bytes. f holds the
// same bytes from offset on, for Snapshot.
func verifyFile(r io.Reader, f *os.File, offset, size int64, name string) (*File, error) {
	sum := sha256.New()
	tr := io.TeeReader(r, sum) // the checksum covers all but itself
	m, hlen, err := readHeader(tr)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", name, err)
	}
	if want := int64(hlen) + int64(m.Size) + sha256.Size; m.Size > uint64(size) || size != want {
		return nil, fmt.Errorf("backup %s: %d bytes, its header says %d (truncated or appended to): %w", name, size, want, ErrBadFile)
	}
	if _, err := io.CopyN(io.Discard, tr, int64(m.Size)); err != nil {
		return nil, fmt.Errorf("backup %s: read snapshot: %w", name, err)
	}
	got := sum.Sum(nil)
	var trailer [sha256.Size]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return nil, fmt.Errorf("backup %s: read checksum: %w", name, err)
	}
	if !bytes.Equal(got, trailer[:]) {
		return nil, fmt.Errorf("backup %s: SHA-256 mismatch (the file was altered or damaged): %w", name, ErrBadFile)
	}
	return &File{Meta: m, f: f, dataOffset: offset + int64(hlen)}, nil
}

// maxIndexTerm bounds a backup's index and term (2^62).
const maxIndexTerm = 1 << 62

func readHeader(r io.Reader) (Meta, int, error) {
	var fixed [len(magic) + 2 + 8*4 + 2]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return Meta{}, 0, fmt.Errorf("header: %v: %w", err, ErrBadFile)
	}
	if string(fixed[:len(magic)]) != magic {
		return Meta{}, 0, fmt.Errorf("no orderly backup header: %w", ErrBadFile)
	}
	b := fixed[len(magic):]
	if v := binary.BigEndian.Uint16(b); v != version {
		return Meta{}, 0, fmt.Errorf("backup format version %d, this build reads %d: %w", v, version, ErrBadFile)
	}
	m := Meta{Index: binary.BigEndian.Uint64(b[2:]), Term: binary.BigEndian.Uint64(b[10:]),
		Created: time.Unix(0, int64(binary.BigEndian.Uint64(b[18:]))), Size: binary.BigEndian.Uint64(b[26:])}
	// A SHA-256 is a checksum, not a signature: whoever can write a file
	// can make one that verifies. An index or term near 2^64 would make
	// the restored node fail at every start (Raft's index arithmetic) or
	// wrap to term 0; no real cluster comes near 2^62.
	if m.Index == 0 || m.Index >= maxIndexTerm || m.Term == 0 || m.Term >= maxIndexTerm {
		return Meta{}, 0, fmt.Errorf("index %d, term %d: want each in [1, 2^62): %w", m.Index, m.Term, ErrBadFile)
	}
	n := int(binary.BigEndian.Uint16(b[34:]))
	hlen := len(fixed)
	if n > maxMembers {
		return Meta{}, 0, fmt.Errorf("header claims %d members: %w", n, ErrBadFile)
	}
	str := func() (string, error) {
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", err
		}
		s := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(r, s); err != nil {
			return "", err
		}
		hlen += 2 + len(s)
		return string(s), nil
	}
	for range n {
		id, err := str()
		if err != nil {
			return Meta{}, 0, fmt.Errorf("header members: %v: %w", err, ErrBadFile)
		}
		addr, err := str()
		if err != nil {
			return Meta{}, 0, fmt.Errorf("header members: %v: %w", err, ErrBadFile)
		}
		m.Members = append(m.Members, Member{ID: id, RaftAddr: addr})
	}
	return m, hlen, nil
}

// Snapshot reads the state machine's snapshot, from its start.
func (b *File) Snapshot() (io.Reader, error) {
	if _, err := b.f.Seek(b.dataOffset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("backup: seek to snapshot: %w", err)
	}
	return io.LimitReader(bufio.NewReader(b.f), int64(b.Size)), nil
}

// Close closes the file (a bundle's backup: nothing, Bundle.Close does).
func (b *File) Close() error {
	if !b.owned {
		return nil
	}
	return b.f.Close()
}
