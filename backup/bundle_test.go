package backup

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"orderly/wire"
)

// writeBundle writes a bundle of shards shards through DownloadBundle, as
// orderctl does: group g's snapshot is its name repeated, in chunks.
func writeBundle(t *testing.T, shards int) (string, map[int][]byte) {
	t.Helper()
	data := map[int][]byte{}
	for g := -1; g < shards; g++ {
		data[g] = bytes.Repeat(fmt.Appendf(nil, "group %d ", g), 300+100*g)
	}
	var buf bytes.Buffer
	metas, err := DownloadBundle(&buf, shards, func(g int, req wire.Backup) (wire.BackupChunk, error) {
		return chunkOf(data[g], uint64(10+g), req), nil
	}, nil)
	if err != nil || len(metas) != shards+1 {
		t.Fatalf("DownloadBundle: %d metas, %v", len(metas), err)
	}
	path := filepath.Join(t.TempDir(), "b.bundle")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// chunkOf answers req from snapshot bytes data, as a leader would.
func chunkOf(data []byte, index uint64, req wire.Backup) wire.BackupChunk {
	end := min(req.Offset+700, uint64(len(data)))
	c := wire.BackupChunk{Token: 1, Index: index, Term: 2, Size: uint64(len(data)), Offset: req.Offset,
		Data: data[req.Offset:end], Members: []wire.Member{{ID: "n1", RaftAddr: "127.0.0.1:7001"}}}
	if end == uint64(len(data)) {
		sum := sha256.Sum256(data)
		c.Last, c.SHA256 = true, sum[:]
	}
	return c
}

func TestBundleRoundTrip(t *testing.T) {
	path, data := writeBundle(t, 3)
	if ok, err := IsBundle(path); !ok || err != nil {
		t.Fatalf("IsBundle: %v %v", ok, err)
	}
	b, err := OpenBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Shards) != 3 {
		t.Fatalf("%d shards, want 3", len(b.Shards))
	}
	for g, f := range append([]*File{b.Meta}, b.Shards...) {
		r, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data[g-1]) || f.Index != uint64(10+g-1) {
			t.Fatalf("group %d: %d bytes at index %d (%v), want %d at %d", g-1, len(got), f.Index, err, len(data[g-1]), 10+g-1)
		}
		f.Close() // a bundle's: leaves the file to the bundle
	}
	if _, err := b.Meta.Snapshot(); err != nil {
		t.Fatalf("a section closed the bundle's file: %v", err)
	}
}

// TestBundleRefusesDamage: a flipped byte anywhere, a cut, bytes
// appended, a count it cannot hold: not a whole bundle.
func TestBundleRefusesDamage(t *testing.T) {
	path, _ := writeBundle(t, 2)
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{
		"truncated": whole[:len(whole)-40],
		"appended":  append(append([]byte(nil), whole...), 0),
		"cut short": whole[:30],
	}
	for _, at := range []int{len(bundleMagic) + 1, len(bundleMagic) + 3, 40, len(whole) / 2, len(whole) - 1} {
		b := append([]byte(nil), whole...)
		b[at] ^= 0x10
		variants[fmt.Sprintf("flipped at %d", at)] = b
	}
	for name, b := range variants {
		bad := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenBundle(bad); !errors.Is(err, ErrBadFile) {
			t.Errorf("%s: %v, want ErrBadFile", name, err)
		}
	}
	if _, err := NewBundleWriter(io.Discard, 1); err == nil {
		t.Error("a bundle of one shard: accepted")
	}
	if _, err := NewBundleWriter(io.Discard, MaxShards+1); err == nil {
		t.Error("a bundle past MaxShards: accepted")
	}
	bw, _ := NewBundleWriter(io.Discard, 2)
	if err := bw.Close(); err == nil {
		t.Error("a bundle closed with no backups in it: accepted")
	}
}

// FuzzOpenBundle: any bytes are a verified bundle or an error, never a
// panic or a hang; the seeds are a whole bundle and pieces of one.
func FuzzOpenBundle(f *testing.F) {
	dir := f.TempDir()
	var buf bytes.Buffer
	data := bytes.Repeat([]byte("seed "), 200)
	if _, err := DownloadBundle(&buf, 2, func(_ int, req wire.Backup) (wire.BackupChunk, error) {
		return chunkOf(data, 3, req), nil
	}, nil); err != nil {
		f.Fatal(err)
	}
	whole := buf.Bytes()
	f.Add(whole)
	f.Add(whole[:len(bundleMagic)+4])
	f.Add(whole[:len(whole)/2])
	f.Add([]byte(bundleMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.bundle")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		bu, err := OpenBundle(path)
		if err != nil {
			return
		}
		defer bu.Close()
		for _, g := range append([]*File{bu.Meta}, bu.Shards...) {
			r, err := g.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || uint64(n) != g.Size {
				t.Fatalf("a verified bundle's group reads %d of %d bytes: %v", n, g.Size, err)
			}
		}
	})
}
