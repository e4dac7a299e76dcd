package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"orderly/feed"
	"orderly/serve"
	"orderly/wire"
)

// sseHeaderDelay is how long a watch waits for its first frame before it
// sends its headers anyway: long enough that a position already
// compacted is answered 410 rather than inside the stream.
const sseHeaderDelay = 500 * time.Millisecond

// watch serves GET /v1/watch: the change feed as Server-Sent Events. Each
// order is an "order" event; the last event of each Raft entry carries
// the position after it as its id (an entry's orders are delivered
// together, so a resume never splits one). "progress" events (id: the
// position the feed has reached) tell a watcher how far it has seen;
// Last-Event-ID resumes after an id. A position the feed no longer holds
// is answered 410 (or, mid-stream, a "compacted" event) with the oldest
// it does. Every customer of a sharded cluster is watched shard by
// shard: a position is then one index per shard ("p0.p1.p2"), and each
// order names its shard.
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
	shards := uint32(1)
	if wt.Customer == wire.WatchAll && g.opt.Shards != nil {
		if shards, err = g.opt.Shards(r.Context()); err != nil {
			writeWireError(w, wire.Errorf(wire.CodeUnavailable, "watch: %v", err), readCall)
			return
		}
	}
	pos, err := startPositions(q, r.Header.Get("Last-Event-ID"), shards)
	if err != nil {
		badRequest(w, "%v", err)
		return
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
	if shards == 1 {
		wt.From = pos[0]
		s.end(g.opt.Watch(r.Context(), from, wt, func(ctx context.Context, m wire.Message) error { return s.send(0, m) }), nil)
		return
	}
	s.pos = make([]uint64, shards)
	for i, p := range pos {
		s.pos[i] = max(p, 1) - 1
	}
	s.end(g.watchShards(r.Context(), from, pos, s))
}

// watchShards follows every shard's feed, shard i from pos[i], into s;
// the first stream to end ends them all, and its last word (with its
// shard) is the watch's.
func (g *Gateway) watchShards(ctx context.Context, from serve.Caller, pos []uint64, s *sse) (wire.Message, *uint32) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	var last wire.Message
	var lastShard uint32
	var wg sync.WaitGroup
	for i, p := range pos {
		sh := uint32(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			wt := wire.Watch{From: p, Customer: wire.WatchAll, PerShard: true, Shard: sh}
			m := g.opt.Watch(ctx, from, wt, func(_ context.Context, m wire.Message) error { return s.send(sh, m) })
			once.Do(func() { last, lastShard = m, sh; cancel() })
		}()
	}
	wg.Wait()
	return last, &lastShard
}

// startPositions is where a watch starts, per shard (one for a watch of
// one customer, or of a cluster of one shard): after Last-Event-ID if
// given, else from from_index or from_positions (0: from now).
func startPositions(q url.Values, lastID string, shards uint32) ([]uint64, error) {
	if lastID != "" {
		pos, err := feed.ParsePositions(lastID, shards)
		if err != nil {
			return nil, fmt.Errorf("Last-Event-ID %q: want an event id of this feed (%v)", lastID, err)
		}
		for i := range pos {
			pos[i]++ // after it (0: nothing seen; from the first)
		}
		return pos, nil
	}
	if v := q.Get("from_positions"); v != "" {
		pos, err := feed.ParsePositions(v, shards)
		if err != nil {
			return nil, fmt.Errorf("from_positions %q: %v", v, err)
		}
		return pos, nil
	}
	pos := make([]uint64, shards)
	if v := q.Get("from_index"); v != "" {
		from, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("from_index %q: want an index >= 0 (0: from now)", v)
		}
		if shards > 1 && from != 0 {
			return nil, fmt.Errorf("from_index %q: a cluster of %d shards has an index per shard: give from_positions", v, shards)
		}
		pos[0] = from
	}
	return pos, nil
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
	// pos is, per shard, the index the client has every order up to (a
	// watch of every customer of a sharded cluster); nil: one feed.
	pos []uint64
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

// send writes a frame of shard's feed (0: the one feed); an error (the
// client went away, or has not read for the write timeout) ends the
// watch.
func (s *sse) send(shard uint32, m wire.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
	s.buf.Reset()
	ev, ok := m.(wire.Events)
	if !ok {
		return fmt.Errorf("watch sent %s", m.Type())
	}
	lastID := uint64(0)
	for i, e := range ev.Events {
		id := "" // only the last event of an entry: a resume never splits one
		if i == len(ev.Events)-1 || ev.Events[i+1].Index != e.Index {
			id, lastID = s.idAt(shard, e.Index), e.Index
		}
		body := eventOf(e)
		if s.pos != nil {
			body.Shard = &shard
		}
		writeEvent(&s.buf, "order", id, body)
	}
	if ev.Through > lastID {
		writeEvent(&s.buf, "progress", s.idAt(shard, ev.Through), progress{Through: ev.Through, Shard: s.shardOf(shard)})
	}
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

// progress is the body of a "progress" event.
type progress struct {
	Through uint64  `json:"through"`
	Shard   *uint32 `json:"shard,omitempty"`
}

func (s *sse) shardOf(shard uint32) *uint32 {
	if s.pos == nil {
		return nil
	}
	return &shard
}

// idAt is the event id of the position index of shard: the index itself
// for one feed, else every shard's position with shard's moved to index.
// Called with s.mu held.
func (s *sse) idAt(shard uint32, index uint64) string {
	if s.pos == nil {
		return strconv.FormatUint(index, 10)
	}
	s.pos[shard] = index
	return feed.FormatPositions(s.pos)
}

// end writes the watch's last word: before the stream began, as an
// answer of its own.
func (s *sse) end(last wire.Message, shard *uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	var body apiError
	name := "error"
	switch m := last.(type) {
	case nil:
		return
	case wire.Compacted:
		body, name = apiError{Code: codeCompacted, Message: m.Message, Oldest: m.Oldest, Shard: shard}, "compacted"
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
		body = apiError{Code: m.Code.String(), Message: m.Message, Retryable: retryable(m.Code), Shard: shard}
	default:
		body = apiError{Code: wire.CodeInternal.String(), Message: fmt.Sprintf("watch ended with %s", last.Type())}
	}
	s.buf.Reset()
	writeEvent(&s.buf, name, "", body)
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) //nolint:errcheck // the last word is best effort
	s.w.Write(s.buf.Bytes())                         //nolint:errcheck // the client may be gone
	s.rc.Flush()                                     //nolint:errcheck // the client may be gone
}

// writeEvent appends one Server-Sent Event ("": no id).
func writeEvent(b *bytes.Buffer, name string, id string, data any) {
	fmt.Fprintf(b, "event: %s\n", name)
	if id != "" {
		fmt.Fprintf(b, "id: %s\n", id)
	}
	j, _ := json.Marshal(data) // our own types: cannot fail
	b.WriteString("data: ")
	b.Write(j)
	b.WriteString("\n\n")
}
