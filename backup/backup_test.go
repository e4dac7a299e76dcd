package backup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func writeSample(t *testing.T, data []byte) (string, Meta) {
	t.Helper()
	m := Meta{Index: 1234, Term: 7, Created: time.Unix(0, 1_700_000_000_123_456_789), Size: uint64(len(data)),
		Members: []Member{{"n1", "10.0.0.1:7001"}, {"n2", "10.0.0.2:7001"}, {"n3", "10.0.0.3:7001"}}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, m)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 { // in pieces, as a backup arrives
		n := min(len(data), 1000)
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.snap")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, m
}

func TestRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("orderly "), 5000)
	path, m := writeSample(t, data)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Meta, m) {
		t.Fatalf("meta %+v, want %+v", f.Meta, m)
	}
	for range 2 { // Snapshot may be read again from its start
		r, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("snapshot: %d bytes (err %v), want %d", len(got), err, len(data))
		}
	}
}

// TestDamagedRefused: every truncation, a flipped byte anywhere, an
// appended byte and another file are refused with ErrBadFile.
func TestDamagedRefused(t *testing.T) {
	path, _ := writeSample(t, bytes.Repeat([]byte{1, 2, 3}, 700))
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	try := func(what string, b []byte) {
		t.Helper()
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Open(bad)
		if err == nil {
			f.Close()
			t.Fatalf("%s: accepted", what)
		}
		if !errors.Is(err, ErrBadFile) {
			t.Fatalf("%s: %v, want ErrBadFile", what, err)
		}
	}
	for n := 0; n < len(whole); n += 97 {
		try("truncated", whole[:n])
	}
	try("one byte short", whole[:len(whole)-1])
	for i := 0; i < len(whole); i += 13 {
		flipped := bytes.Clone(whole)
		flipped[i] ^= 0x20
		try("flipped", flipped)
	}
	try("appended", append(bytes.Clone(whole), 0))
	try("another file", []byte("#!/bin/sh\necho hello\n"))
}

func TestWriterChecksSize(t *testing.T) {
	w, err := NewWriter(io.Discard, Meta{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abcd")); err == nil {
		t.Fatal("wrote more than Size")
	}
	if _, err := w.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("closed short of Size")
	}
}

// TestAbsurdIndexOrTermRefused: a SHA-256 is no signature, so a crafted
// backup verifies; an index or term at 2^62 and above (2^64-1 failed every
// start of the restored node; a term wrapped to 0) or at 0 is refused
// before anything is written.
func TestAbsurdIndexOrTermRefused(t *testing.T) {
	for _, m := range []Meta{
		{Index: 1<<64 - 1, Term: 7}, {Index: 1 << 62, Term: 7}, {Index: 0, Term: 7},
		{Index: 9, Term: 1<<64 - 1}, {Index: 9, Term: 1 << 62}, {Index: 9, Term: 0},
	} {
		m.Size = 3
		var buf bytes.Buffer
		w, err := NewWriter(&buf, m)
		if err != nil {
			continue // refused even earlier
		}
		w.Write([]byte{1, 2, 3}) //nolint:errcheck // checked by Close
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "crafted.snap")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if f, err := Open(path); !errors.Is(err, ErrBadFile) {
			if f != nil {
				f.Close()
			}
			t.Errorf("index %d term %d: %v, want ErrBadFile", m.Index, m.Term, err)
		}
	}
}
