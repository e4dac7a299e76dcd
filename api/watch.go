package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// sseHeaderDelay is how long a watch waits for its first frame before it
// sends its headers anyway: long enough that a position already
// compacted is answered 410 rather than inside the stream.
const sseHeaderDelay = 500 * time.Millisecond

// watch serves GET /v1/watch: the change feed as Server-Sent Events. Each
// order is an "order" event whose id is its Raft index; "progress" events
// (id: the index the feed has reached) tell a watcher of one customer how
// far it has seen; Last-Event-ID resumes after an id. A position the
// feed no longer holds is answered 410 (or, mid-stream, a "compacted"
// event) with the oldest it does.
func (g *Gateway) watch(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	q := r.URL.Query()
	wt := wire.Watch{Customer: wire.WatchAll}
	var err error
	if v := q.Get("customer"); v != "" {
		if wt.Customer, err = customerID("customer", v); err != nil {
			badRequest(w, "%v", err)
			return
		}
	}
	if v := q.Get("from_index"); v != "" {
		if wt.From, err = strconv.ParseUint(v, 10, 64); err != nil {
			badRequest(w, "from_index %q: want an index >= 0 (0: from now)", v)
			return
		}
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id == ^uint64(0) {
			badRequest(w, "Last-Event-ID %q: want an event id of this feed", v)
			return
		}
		wt.From = id + 1
	}
	release, err := g.admit(from, wt)
	if err != nil {
		writeWireError(w, err, readCall)
		return
	}
	defer release()
	s := &sse{w: w, rc: http.NewResponseController(w), timeout: g.opt.WatchWriteTimeout}
	// A stream outlives the side port's read timeout (which would end its
	// context) and its write timeout; each write gets its own deadline.
	s.rc.SetReadDeadline(time.Time{}) //nolint:errcheck // HTTP/2 streams have none to clear
	early := time.AfterFunc(sseHeaderDelay, func() { s.begin() })
	defer early.Stop()
	last := g.opt.Watch(r.Context(), from, wt, s.send)
	s.end(last)
}

// sse writes one watch's events; begin, send and end may race with the
// header timer, so a mutex orders them.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	mu      sync.Mutex
	started bool
	ended   bool // the handler has returned or is about to: no more writes
	buf     bytes.Buffer
}

func (s *sse) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended { // the timer fired as the watch ended
		return
	}
	s.startLocked()
	s.rc.Flush() //nolint:errcheck // a dead client shows at the next send
}

func (s *sse) startLocked() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) //nolint:errcheck // see watch
	s.w.WriteHeader(http.StatusOK)
}

// send writes a frame of the feed; an error (the client went away, or has
// not read for the write timeout) ends the watch.
func (s *sse) send(_ context.Context, m wire.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
	s.buf.Reset()
	ev, ok := m.(wire.Events)
	if !ok {
		return fmt.Errorf("watch sent %s", m.Type())
	}
	lastID := uint64(0)
	for _, e := range ev.Events {
		writeEvent(&s.buf, "order", e.Index, eventOf(e))
		lastID = e.Index
	}
	if ev.Through > lastID {
		writeEvent(&s.buf, "progress", ev.Through, map[string]uint64{"through": ev.Through})
	}
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

// end writes the watch's last word: before the stream began, as an
// answer of its own.
func (s *sse) end(last wire.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	var body apiError
	name := "error"
	switch m := last.(type) {
	case nil:
		return
	case wire.Compacted:
		body, name = apiError{Code: codeCompacted, Message: m.Message, Oldest: m.Oldest}, "compacted"
		if !s.started {
			s.started = true
			writeJSON(s.w, http.StatusGone, body)
			return
		}
	case *wire.Error:
		if !s.started {
			s.started = true
			writeWireError(s.w, m, readCall)
			return
		}
		body = apiError{Code: m.Code.String(), Message: m.Message, Retryable: retryable(m.Code)}
	default:
		body = apiError{Code: wire.CodeInternal.String(), Message: fmt.Sprintf("watch ended with %s", last.Type())}
	}
	s.buf.Reset()
	writeEvent(&s.buf, name, 0, body)
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) //nolint:errcheck // the last word is best effort
	s.w.Write(s.buf.Bytes())                         //nolint:errcheck // the client may be gone
	s.rc.Flush()                                     //nolint:errcheck // the client may be gone
}

// writeEvent appends one Server-Sent Event (id 0: none).
func writeEvent(b *bytes.Buffer, name string, id uint64, data any) {
	fmt.Fprintf(b, "event: %s\n", name)
	if id > 0 {
		fmt.Fprintf(b, "id: %d\n", id)
	}
	j, _ := json.Marshal(data) // our own types: cannot fail
	b.WriteString("data: ")
	b.Write(j)
	b.WriteString("\n\n")
}
