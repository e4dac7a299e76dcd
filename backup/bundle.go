package backup

// A backup of a sharded cluster is a bundle: the backup of each of its
// Raft groups, the meta group's first, each a whole backup file (header,
// snapshot, SHA-256), and a SHA-256 of the bundle.
//
// Format, version 1, big-endian:
//
//	magic "ORDERLY-BUNDLE\x00\x01" (16 bytes) | uint16 version | uint16 shards S
//	S+1 times: uint64 size | size bytes: a backup file (the meta group's, then shard 0's ... S-1's)
//	32 bytes: SHA-256 of everything above

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
)

const (
	bundleMagic   = "ORDERLY-BUNDLE\x00\x01"
	bundleVersion = 1
	// MaxShards bounds the shards a bundle may claim (package shard's).
	MaxShards = 256
)

// IsBundle says whether the file at path starts as a bundle.
func IsBundle(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	var head [len(bundleMagic)]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return false, nil // too short for either: Open says why
	}
	return string(head[:]) == bundleMagic, nil
}

// BundleWriter writes a bundle: Next before each group's backup file,
// the meta group's first, then Close.
type BundleWriter struct {
	w      io.Writer
	sum    hash.Hash
	shards int
	next   int   // sections begun
	left   int64 // bytes the current section still owes
}

// NewBundleWriter writes a bundle's header for shards shards to w.
func NewBundleWriter(w io.Writer, shards int) (*BundleWriter, error) {
	if shards < 2 || shards > MaxShards {
		return nil, fmt.Errorf("bundle of %d shards: want 2 to %d (one shard is a plain backup)", shards, MaxShards)
	}
	bw := &BundleWriter{w: w, sum: sha256.New(), shards: shards}
	h := binary.BigEndian.AppendUint16(append([]byte(bundleMagic), 0, bundleVersion), uint16(shards))
	if _, err := bw.write(h); err != nil {
		return nil, fmt.Errorf("write bundle header: %w", err)
	}
	return bw, nil
}

func (b *BundleWriter) write(p []byte) (int, error) {
	b.sum.Write(p)
	return b.w.Write(p)
}

// Next begins the next group's backup file, of size bytes (Meta.FileSize):
// write it to the writer returned.
func (b *BundleWriter) Next(size int64) (io.Writer, error) {
	if b.left != 0 {
		return nil, fmt.Errorf("bundle: the last backup is %d bytes short", b.left)
	}
	if b.next > b.shards {
		return nil, fmt.Errorf("bundle: %d backups, its header says %d", b.next+1, b.shards+1)
	}
	if _, err := b.write(binary.BigEndian.AppendUint64(nil, uint64(size))); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	b.next++
	b.left = size
	return sectionWriter{b}, nil
}

type sectionWriter struct{ b *BundleWriter }

func (s sectionWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > s.b.left {
		return 0, fmt.Errorf("bundle: a backup longer than its size")
	}
	n, err := s.b.write(p)
	s.b.left -= int64(n)
	return n, err
}

// Close checks that every group's backup was written whole and appends
// the bundle's checksum.
func (b *BundleWriter) Close() error {
	if b.next != b.shards+1 || b.left != 0 {
		return fmt.Errorf("bundle: %d of %d backups written", b.next, b.shards+1)
	}
	if _, err := b.w.Write(b.sum.Sum(nil)); err != nil {
		return fmt.Errorf("write bundle checksum: %w", err)
	}
	return nil
}

// Bundle is a verified bundle, open for reading its groups' snapshots.
type Bundle struct {
	Meta   *File   // the meta group's backup
	Shards []*File // shard i's backup
	f      *os.File
}

// OpenBundle reads and verifies the bundle at path: its checksum, and
// each group's backup with its own, before any snapshot is given out.
func OpenBundle(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open backup: %w", err)
	}
	b, err := verifyBundle(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

func verifyBundle(f *os.File, path string) (*Bundle, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", path, err)
	}
	sum := sha256.New()
	br := bufio.NewReader(f)
	r := io.TeeReader(br, sum)
	var head [len(bundleMagic) + 4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil || string(head[:len(bundleMagic)]) != bundleMagic {
		return nil, fmt.Errorf("backup %s: no bundle header: %w", path, ErrBadFile)
	}
	if v := binary.BigEndian.Uint16(head[len(bundleMagic):]); v != bundleVersion {
		return nil, fmt.Errorf("backup %s: bundle format version %d, this build reads %d: %w", path, v, bundleVersion, ErrBadFile)
	}
	shards := int(binary.BigEndian.Uint16(head[len(bundleMagic)+2:]))
	if shards < 2 || shards > MaxShards {
		return nil, fmt.Errorf("backup %s: a bundle of %d shards: %w", path, shards, ErrBadFile)
	}
	b := &Bundle{f: f}
	offset := int64(len(head))
	for i := range shards + 1 {
		var size [8]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return nil, fmt.Errorf("backup %s: group %d of %d: %v: %w", path, i, shards+1, err, ErrBadFile)
		}
		n := int64(binary.BigEndian.Uint64(size[:]))
		offset += 8
		if n < 0 || n > st.Size()-offset {
			return nil, fmt.Errorf("backup %s: group %d claims %d bytes, past the file's end: %w", path, i, n, ErrBadFile)
		}
		file, err := verifyFile(io.LimitReader(r, n), f, offset, n, fmt.Sprintf("%s (group %d)", path, i))
		if err != nil {
			return nil, err
		}
		if i == 0 {
			b.Meta = file
		} else {
			b.Shards = append(b.Shards, file)
		}
		offset += n
	}
	got := sum.Sum(nil)
	var trailer [sha256.Size]byte
	if _, err := io.ReadFull(br, trailer[:]); err != nil {
		return nil, fmt.Errorf("backup %s: read bundle checksum: %w", path, err)
	}
	if !bytes.Equal(got, trailer[:]) || offset+sha256.Size != st.Size() {
		return nil, fmt.Errorf("backup %s: bundle SHA-256 mismatch or bytes after it (altered, damaged or appended to): %w", path, ErrBadFile)
	}
	return b, nil
}

// Close closes the bundle's file.
func (b *Bundle) Close() error { return b.f.Close() }
