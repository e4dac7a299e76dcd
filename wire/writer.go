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
// queued, so pipelined requests share system calls. The queue is a slice
// under a mutex that the writer takes whole: a channel cost every frame a
// lock of its own on each side, the balancer's largest cost after its
// system calls (docs/performance.md).
type FrameWriter struct {
	w     *bufio.Writer
	depth int
	wake  chan struct{} // 1-buffered: frames were queued
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	queue   [][]byte
	room    chan struct{} // closed when the writer takes a full queue
	waiting bool          // a sender waits on room
	err     error

	// Set before the first Send (see OnWritten, WriteTimeout).
	written  func(n int)
	deadline IdleDeadline
}

// OnWritten asks the writer to call f with each frame's size once the
// frame is handed to the connection. Call it before the first Send.
func (fw *FrameWriter) OnWritten(f func(n int)) { fw.written = f }

// WriteTimeout closes the writer (and so the connection's replies) when
// c takes no bytes for d: a client that never reads does not hold a
// connection for ever. Call it before the first Send.
func (fw *FrameWriter) WriteTimeout(c net.Conn, d time.Duration) {
	fw.deadline = NewIdleDeadline(c.SetWriteDeadline, d)
}

// NewFrameWriter starts the writer goroutine, which holds up to depth
// frames queued; Close stops it.
func NewFrameWriter(w io.Writer, depth int) *FrameWriter {
	fw := &FrameWriter{
		w:     bufio.NewWriterSize(w, 64<<10),
		depth: max(depth, 1),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		room:  make(chan struct{}),
	}
	go fw.loop()
	return fw
}

// Send queues a frame (built with AppendFrame); the writer owns it after.
// It blocks while the queue is full, which pushes back on the sender.
func (fw *FrameWriter) Send(frame []byte) error {
	for {
		sent, room, err := fw.enqueue(frame)
		if sent || err != nil {
			return err
		}
		select {
		case <-room:
		case <-fw.stop:
			return fw.Err()
		}
	}
}

// TrySend is Send that never blocks: a full queue leaves the frame
// unsent (false, nil).
func (fw *FrameWriter) TrySend(frame []byte) (bool, error) {
	sent, _, err := fw.enqueue(frame)
	return sent, err
}

// enqueue queues frame if there is room; if not, it returns the channel
// that is closed when there may be.
func (fw *FrameWriter) enqueue(frame []byte) (sent bool, room <-chan struct{}, err error) {
	fw.mu.Lock()
	if fw.err != nil {
		err = fw.err
		fw.mu.Unlock()
		return false, nil, err
	}
	if len(fw.queue) >= fw.depth {
		fw.waiting = true
		room = fw.room
		fw.mu.Unlock()
		return false, room, nil
	}
	fw.queue = append(fw.queue, frame)
	first := len(fw.queue) == 1
	fw.mu.Unlock()
	if first { // the writer may be asleep
		select {
		case fw.wake <- struct{}{}:
		default:
		}
	}
	return true, nil, nil
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

// take waits for queued frames and takes them all, handing the writer's
// spare slice to the senders.
func (fw *FrameWriter) take(spare [][]byte) [][]byte {
	for {
		fw.mu.Lock()
		if fw.err != nil {
			fw.mu.Unlock()
			return nil
		}
		if q := fw.queue; len(q) > 0 {
			fw.queue = spare[:0]
			if fw.waiting {
				close(fw.room)
				fw.room, fw.waiting = make(chan struct{}), false
			}
			fw.mu.Unlock()
			return q
		}
		fw.mu.Unlock()
		select {
		case <-fw.wake:
		case <-fw.stop:
			return nil
		}
	}
}

// queued is how many frames wait.
func (fw *FrameWriter) queued() int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return len(fw.queue)
}

func (fw *FrameWriter) loop() {
	defer close(fw.done)
	var batch [][]byte
	for {
		if batch = fw.take(batch); batch == nil {
			return
		}
		for i, f := range batch {
			batch[i] = nil
			if f == nil { // Drain's marker: everything before it is written
				if err := fw.w.Flush(); err != nil {
					fw.fail(err)
				}
				fw.fail(ErrWriterClosed)
				return
			}
			if !fw.write(f) {
				return
			}
		}
		if fw.queued() == 0 {
			// Senders are often runnable right behind us (a batch of
			// responses fanned out to their request goroutines): let
			// them queue their frames first, so one write carries all.
			runtime.Gosched()
		}
		if fw.queued() == 0 {
			if err := fw.w.Flush(); err != nil {
				fw.fail(err)
				return
			}
		}
	}
}

// write hands one frame to the buffer; false means the writer failed.
func (fw *FrameWriter) write(f []byte) bool {
	fw.deadline.Push()
	if _, err := fw.w.Write(f); err != nil {
		fw.fail(err)
		return false
	}
	if fw.written != nil {
		fw.written(len(f))
	}
	return true
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
