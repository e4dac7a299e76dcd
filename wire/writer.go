package wire

import (
	"bufio"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// ErrWriterClosed is returned by Send after the writer has stopped.
var ErrWriterClosed = errors.New("wire: connection writer closed")

// FrameWriter owns the write side of a connection. Many goroutines Send
// frames; one goroutine writes them and flushes only when no more are
// queued, so pipelined requests share system calls.
type FrameWriter struct {
	w     *bufio.Writer
	queue chan []byte
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu  sync.Mutex
	err error

	// Set before the first Send (see OnWritten, WriteTimeout).
	written      func(n int)
	conn         net.Conn
	writeTimeout time.Duration
	deadlineSet  time.Time
}

// OnWritten asks the writer to call f with each frame's size once the
// frame is handed to the connection. Call it before the first Send.
func (fw *FrameWriter) OnWritten(f func(n int)) { fw.written = f }

// WriteTimeout closes the writer (and so the connection's replies) when
// c takes no bytes for d: a client that never reads does not hold a
// connection for ever. Call it before the first Send.
func (fw *FrameWriter) WriteTimeout(c net.Conn, d time.Duration) { fw.conn, fw.writeTimeout = c, d }

// NewFrameWriter starts the writer goroutine; Close stops it.
func NewFrameWriter(w io.Writer, depth int) *FrameWriter {
	fw := &FrameWriter{
		w:     bufio.NewWriterSize(w, 64<<10),
		queue: make(chan []byte, depth),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go fw.loop()
	return fw
}

// Send queues a frame (built with AppendFrame); the writer owns it after.
// It blocks while the queue is full, which pushes back on the sender.
func (fw *FrameWriter) Send(frame []byte) error {
	select {
	case <-fw.stop:
		return fw.Err()
	default:
	}
	select {
	case fw.queue <- frame:
		return nil
	case <-fw.stop:
		return fw.Err()
	}
}

// Stopped is closed when the writer stops (the connection failed or was
// closed).
func (fw *FrameWriter) Stopped() <-chan struct{} { return fw.stop }

// Err returns why the writer stopped, or nil while it runs.
func (fw *FrameWriter) Err() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

func (fw *FrameWriter) fail(err error) {
	fw.mu.Lock()
	if fw.err == nil {
		fw.err = err
	}
	fw.mu.Unlock()
	fw.once.Do(func() { close(fw.stop) })
}

func (fw *FrameWriter) loop() {
	defer close(fw.done)
	for {
		var f []byte
		select {
		case f = <-fw.queue:
		case <-fw.stop:
			return
		}
		if f == nil { // Drain's marker: everything before it is written
			if err := fw.w.Flush(); err != nil {
				fw.fail(err)
			}
			fw.fail(ErrWriterClosed)
			return
		}
		if fw.conn != nil && fw.writeTimeout > 0 {
			// Pushed forward at most once a second: a deadline per frame
			// costs more than it buys.
			if now := time.Now(); now.Sub(fw.deadlineSet) > time.Second {
				fw.deadlineSet = now
				fw.conn.SetWriteDeadline(now.Add(fw.writeTimeout)) //nolint:errcheck // a failed deadline fails the write
			}
		}
		if _, err := fw.w.Write(f); err != nil {
			fw.fail(err)
			return
		}
		if fw.written != nil {
			fw.written(len(f))
		}
		if len(fw.queue) == 0 {
			// Senders are often runnable right behind us (a batch of
			// responses fanned out to their request goroutines): let
			// them queue their frames first, so one write carries all.
			runtime.Gosched()
		}
		if len(fw.queue) == 0 {
			if err := fw.w.Flush(); err != nil {
				fw.fail(err)
				return
			}
		}
	}
}

// Close stops the writer goroutine and waits for it. Queued frames that
// were not written yet are dropped.
func (fw *FrameWriter) Close() {
	fw.fail(ErrWriterClosed)
	<-fw.done
}

// Drain writes everything queued so far, then stops the writer and waits
// for it. Use it to send a last frame (an error) before closing.
func (fw *FrameWriter) Drain() {
	if fw.Send(nil) == nil {
		<-fw.done
		return
	}
	fw.Close()
}
