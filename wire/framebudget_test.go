package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// bigFrame is a frame of n bytes (type, id, payload).
func bigFrame(n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, byte(TypeStatus))
	b = binary.BigEndian.AppendUint64(b, 1)
	return append(b, bytes.Repeat([]byte{7}, n-headerLen)...)
}

// TestFrameBudgetHoldsArrivedBytes: a big frame takes room as its bytes
// arrive and gives it back at the next ReadFrame; a second reader waits
// for room and gives up at its frame deadline with ErrFrameBudget; small
// frames do not count.
func TestFrameBudgetHoldsArrivedBytes(t *testing.T) {
	budget := NewFrameBudget(256 << 10)
	read := func(frames ...[]byte) (*FrameReader, net.Conn) {
		a, b := net.Pipe()
		go func() {
			for _, f := range frames {
				if _, err := a.Write(f); err != nil {
					return
				}
			}
		}()
		fr := NewFrameReader(b, 1<<20)
		fr.SetTimeouts(b, time.Minute, 300*time.Millisecond)
		fr.SetBudget(budget)
		t.Cleanup(func() { a.Close(); b.Close() })
		return fr, b
	}
	first, _ := read(bigFrame(200<<10), bigFrame(10))
	if _, err := first.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if got := budget.InUse(); got < 200<<10 {
		t.Fatalf("a 200 KiB frame holds %d bytes of the budget", got)
	}
	second, _ := read(bigFrame(200 << 10))
	if _, err := second.ReadFrame(); !errors.Is(err, ErrFrameBudget) {
		t.Fatalf("a second big frame with no room: %v, want ErrFrameBudget", err)
	}
	second.Release()
	if _, err := first.ReadFrame(); err != nil { // a small frame: the big one's room comes back
		t.Fatal(err)
	}
	if got := budget.InUse(); got != 0 {
		t.Fatalf("%d bytes held after a small frame", got)
	}
}
