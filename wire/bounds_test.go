package wire

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// A frame's buffer follows the bytes that arrive, not the length the peer
// declared: 100 frames that each declare 1 MiB and send 10 bytes cost
// little memory.
func TestFrameBufferGrowsWithArrivingBytes(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100 {
		b := binary.BigEndian.AppendUint32(nil, 1<<20)
		b = append(b, make([]byte, 10)...)
		fr := NewFrameReader(io.NopCloser(bytesReader(b)), 2<<20)
		if _, err := fr.ReadFrame(); err == nil {
			t.Fatal("a truncated frame was read")
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 100*(growStep+64<<10+4096) {
		t.Fatalf("100 truncated 1 MiB frames allocated %d bytes", got)
	}
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

// The body deadline cuts off a peer that declared a frame and stalls.
func TestFrameBodyDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fr := NewFrameReader(a, 0)
	fr.SetTimeouts(a, time.Minute, 100*time.Millisecond)
	go b.Write(binary.BigEndian.AppendUint32(nil, 100)) //nolint:errcheck
	start := time.Now()
	_, err := fr.ReadFrame()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v, want a deadline", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the body deadline did not apply")
	}
}
