package backup

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"orderly/wire"
)

// FileSize is the size of the backup file m describes: its header, Size
// bytes of snapshot and the checksum.
func (m Meta) FileSize() (int64, error) {
	h, err := m.header()
	if err != nil {
		return 0, err
	}
	return int64(len(h)) + int64(m.Size) + sha256.Size, nil
}

// Download fetches a backup from the leader chunk by chunk (chunk asks
// for one: wire.Backup{} first, then the same token at the next offset)
// and writes it to w as a backup file. begin is told the file's Meta
// before its first byte is written. The chunks are checked against the
// leader's digest; on any error the file written so far lacks its
// checksum, so it is never taken for a whole backup.
func Download(w io.Writer, chunk func(wire.Backup) (wire.BackupChunk, error), begin func(Meta) error) (Meta, error) {
	first, err := chunk(wire.Backup{})
	if err != nil {
		return Meta{}, err
	}
	meta := Meta{Index: first.Index, Term: first.Term, Created: time.Now(), Size: first.Size}
	for _, m := range first.Members {
		meta.Members = append(meta.Members, Member{ID: m.ID, RaftAddr: m.RaftAddr})
	}
	if err := begin(meta); err != nil {
		return meta, err
	}
	bw, err := NewWriter(w, meta)
	if err != nil {
		return meta, err
	}
	sum := sha256.New()
	var got uint64
	for c := first; ; {
		if c.Token != first.Token || c.Offset != got {
			return meta, fmt.Errorf("chunk of backup %d at %d, want backup %d at %d", c.Token, c.Offset, first.Token, got)
		}
		sum.Write(c.Data)
		got += uint64(len(c.Data))
		if _, err := bw.Write(c.Data); err != nil {
			return meta, fmt.Errorf("write backup: %w", err)
		}
		if c.Last {
			if !bytes.Equal(c.SHA256, sum.Sum(nil)) {
				return meta, fmt.Errorf("the snapshot received differs from the leader's (SHA-256 %x, leader's %x)", sum.Sum(nil), c.SHA256)
			}
			return meta, bw.Close()
		}
		next := c.Offset + uint64(len(c.Data))
		if c, err = chunk(wire.Backup{Token: first.Token, Offset: next}); err != nil {
			return meta, fmt.Errorf("at %d of %d bytes: %w", next, first.Size, err)
		}
	}
}

// DownloadBundle fetches the backup of every group of a cluster of shards
// shards (the meta group's, then each shard's: chunk asks for group g's
// pieces, -1 the meta group) and writes them to w as a bundle. begin is
// told each group's Meta before its first byte.
func DownloadBundle(w io.Writer, shards int, chunk func(group int, req wire.Backup) (wire.BackupChunk, error), begin func(group int, m Meta) error) ([]Meta, error) {
	bw, err := NewBundleWriter(w, shards)
	if err != nil {
		return nil, err
	}
	var metas []Meta
	for g := -1; g < shards; g++ {
		var section lazyWriter
		m, err := Download(&section, func(req wire.Backup) (wire.BackupChunk, error) { return chunk(g, req) },
			func(m Meta) error {
				size, err := m.FileSize()
				if err == nil {
					section.w, err = bw.Next(size)
				}
				if err == nil && begin != nil {
					err = begin(g, m)
				}
				return err
			})
		if err != nil {
			if g < 0 {
				return metas, fmt.Errorf("meta group: %w", err)
			}
			return metas, fmt.Errorf("shard %d: %w", g, err)
		}
		metas = append(metas, m)
	}
	return metas, bw.Close()
}

// lazyWriter writes to w, set once a section's size is known.
type lazyWriter struct{ w io.Writer }

func (l *lazyWriter) Write(p []byte) (int, error) { return l.w.Write(p) }
