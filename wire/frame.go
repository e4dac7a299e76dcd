package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// Version is the protocol version this package speaks.
const Version uint16 = 1

// Magic opens every orderly connection.
const Magic = "ORDL"

// handshakeLen is the client hello; the server's answer has one status byte more.
const handshakeLen = 6

// Handshake status bytes sent by the server.
const (
	hsOK         = 0
	hsBadMagic   = 1
	hsBadVersion = 2
	hsBusy       = 3 // at its connection limit: try another address or later
)

// DefaultMaxFrame is the default limit on a frame's length field.
const DefaultMaxFrame = 1 << 20

// headerLen is the frame's type byte plus request id (the length field excluded).
const headerLen = 1 + 8

// Errors of the framing layer.
var (
	ErrBadMagic      = errors.New("wire: not an orderly connection (bad magic)")
	ErrBadVersion    = errors.New("wire: unsupported protocol version")
	ErrFrameTooLarge = errors.New("wire: frame longer than the maximum")
	ErrFrameTooShort = errors.New("wire: frame shorter than its header")
	ErrServerBusy    = errors.New("wire: server at its connection limit")
)

func hello() []byte {
	b := append([]byte(Magic), 0, 0)
	binary.BigEndian.PutUint16(b[4:], Version)
	return b
}

// ClientHandshake sends the client hello on c and checks the server's answer.
func ClientHandshake(c net.Conn, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer c.SetDeadline(time.Time{}) //nolint:errcheck // best effort reset
	if _, err := c.Write(hello()); err != nil {
		return fmt.Errorf("handshake: send hello: %w", err)
	}
	var ans [handshakeLen + 1]byte
	if _, err := io.ReadFull(c, ans[:]); err != nil {
		return fmt.Errorf("handshake: read answer: %w", err)
	}
	if string(ans[:4]) != Magic {
		return fmt.Errorf("handshake: %w", ErrBadMagic)
	}
	switch ans[6] {
	case hsOK:
		return nil
	case hsBadVersion:
		return fmt.Errorf("handshake: server speaks version %d, we speak %d: %w",
			binary.BigEndian.Uint16(ans[4:]), Version, ErrBadVersion)
	case hsBusy:
		return fmt.Errorf("handshake: %w", ErrServerBusy)
	default:
		return fmt.Errorf("handshake: server refused our hello (status %d)", ans[6])
	}
}

// ServerHandshake reads the client hello from c and answers it. On a wrong
// magic or version it answers with the reason and returns an error; the
// caller then closes the connection.
func ServerHandshake(c net.Conn, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer c.SetDeadline(time.Time{}) //nolint:errcheck // best effort reset
	var h [handshakeLen]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return fmt.Errorf("handshake: read hello: %w", err)
	}
	status, err := byte(hsOK), error(nil)
	switch {
	case string(h[:4]) != Magic:
		status, err = hsBadMagic, ErrBadMagic
	case binary.BigEndian.Uint16(h[4:]) != Version:
		status, err = hsBadVersion, fmt.Errorf("%w %d", ErrBadVersion, binary.BigEndian.Uint16(h[4:]))
	}
	if _, werr := c.Write(append(hello(), status)); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	return nil
}

// RefuseBusy answers a connection the server will not serve because it is
// at its connection limit: the handshake answer with the busy status,
// without reading anything, then the caller closes it. It never blocks
// for long: a client that does not read gets nothing.
func RefuseBusy(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)) //nolint:errcheck // best effort
	c.Write(append(hello(), hsBusy))                           //nolint:errcheck // best effort
}

// Frame is one received frame. Payload is only valid until the next
// ReadFrame on the same reader.
type Frame struct {
	Type    Type
	ID      uint64
	Payload []byte
}

// FrameReader reads frames from a stream, reusing one buffer.
type FrameReader struct {
	r   *bufio.Reader
	max uint32
	buf []byte
	// lb holds a frame's length. A local array would escape through
	// io.ReadFull's interface argument and cost an allocation per frame.
	lb [4]byte

	conn deadliner     // SetTimeouts: where to set read deadlines
	body time.Duration // SetTimeouts
	idle IdleDeadline  // SetTimeouts

	budget *FrameBudget // SetBudget; nil: none
	held   int64        // of budget, by the last frame
}

// ErrFrameBudget means a big frame waited past its deadline for room in
// the server's FrameBudget.
var ErrFrameBudget = errors.New("wire: no room for the frame in the server's frame memory budget")

// SetBudget makes big frames take room in b as their bytes arrive (see
// FrameBudget); Release gives back what the last one held.
func (fr *FrameReader) SetBudget(b *FrameBudget) { fr.budget = b }

// Release gives the budget back what the last frame held: call it when
// the reader is done.
func (fr *FrameReader) Release() {
	if fr.budget != nil {
		fr.budget.release(fr.held)
		fr.held = 0
	}
}

// NewFrameReader reads frames of at most max bytes (0 means DefaultMaxFrame).
func NewFrameReader(r io.Reader, max uint32) *FrameReader {
	if max == 0 {
		max = DefaultMaxFrame
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// deadliner is what SetTimeouts needs of a connection.
type deadliner interface{ SetReadDeadline(time.Time) error }

// SetTimeouts bounds how long the reader waits on c: idle for the next
// frame to begin, body for a frame's body once its length has arrived (a
// peer that declares a frame and sends it slowly, or never, is cut off).
// Zero leaves that wait unbounded.
func (fr *FrameReader) SetTimeouts(c deadliner, idle, body time.Duration) {
	fr.conn, fr.body, fr.idle = c, body, IdleDeadline{}
	if c != nil {
		fr.idle = NewIdleDeadline(c.SetReadDeadline, idle)
	}
}

// growStep is how much a frame's buffer grows at a time: a declared length
// is only a promise, so memory follows the bytes that arrive.
const growStep = 64 << 10

// ReadFrame reads the next frame. A length over the maximum or under the
// header size is an error, and the stream can no longer be trusted.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	fr.Release() // the last frame's payload is no longer valid
	fr.idle.Push()
	if _, err := io.ReadFull(fr.r, fr.lb[:]); err != nil {
		return Frame{}, err
	}
	n := int(binary.BigEndian.Uint32(fr.lb[:]))
	switch {
	case n > int(fr.max):
		return Frame{}, fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, n, fr.max)
	case n < headerLen:
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrFrameTooShort, n)
	}
	bodyDeadline := fr.conn != nil && fr.body > 0 && fr.r.Buffered() < n
	if bodyDeadline {
		if err := fr.conn.SetReadDeadline(time.Now().Add(fr.body)); err != nil {
			return Frame{}, fmt.Errorf("read frame body: %w", err)
		}
		fr.idle.Forget() // the idle deadline must be set again
	}
	b := fr.buf[:0]
	var deadline time.Time // of a wait for room in the budget
	if fr.body > 0 {
		deadline = time.Now().Add(fr.body)
	}
	for len(b) < n {
		chunk := min(n-len(b), max(growStep, len(b))) // at most doubling what arrived
		if fr.budget != nil && n > growStep {
			if !fr.budget.acquire(int64(chunk), deadline) {
				return Frame{}, fmt.Errorf("read frame body (%d of %d bytes): %w", len(b), n, ErrFrameBudget)
			}
			fr.held += int64(chunk)
		}
		if cap(b) < len(b)+chunk {
			nb := make([]byte, len(b), len(b)+max(chunk, 512))
			copy(nb, b)
			b = nb
		}
		if _, err := io.ReadFull(fr.r, b[len(b):len(b)+chunk]); err != nil {
			return Frame{}, fmt.Errorf("read frame body (%d of %d bytes): %w", len(b), n, noEOF(err))
		}
		b = b[:len(b)+chunk]
	}
	if cap(b) <= growStep {
		fr.buf = b // keep small buffers; a big one goes back to the GC with its frame
	}
	return Frame{Type: Type(b[0]), ID: binary.BigEndian.Uint64(b[1:9]), Payload: b[9:]}, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// smallFrame is room for a frame of any of the hot messages (Order,
// LaptopInfo, Get, Record): AppendFrame makes it at once rather than
// growing a nil slice four times per frame.
const smallFrame = 96

// AppendFrame appends a whole frame carrying m to dst.
func AppendFrame(dst []byte, id uint64, m Message) []byte {
	dst = slices.Grow(dst, smallFrame)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(m.Type()))
	dst = appendU64(dst, id)
	dst = m.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
