package lb

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// share divides the window of the balancer's connection to one node among
// the balancer's clients. The node reads at most its --max-inflight
// requests of a connection at a time, and the balancer carries every
// client's orders on that one connection: without a share, a client that
// pipelines a thousand orders for one customer (which go one per Raft
// entry) fills the window, and every other client's order waits in the
// connection behind all of them (e2e
// TestOneCustomerFloodThroughBalancerStarvesNoOne: 35 s for 200 orders).
// With it, an order that finds the window full waits in its connection's
// lane, and a slot that comes back goes to the next in turn: a client
// waits for a slot and its turn, never behind another client's queue.
//
// Turns go first by client (a certificate name; the seed's port is one
// client), then by connection within it: a client that opens a thousand
// connections gets the turns of one client, and a connection shared by
// nobody else is not held up by its client's other connections either.
// A lane exists while it has orders waiting.
type share struct {
	mu     sync.Mutex
	size   int // slots in all
	used   int // slots taken; below size only while no lane waits
	queued int // sends waiting in lanes
	groups map[string]*group
	turns  []*group // clients with orders waiting, in the order they are served
}

// laneID names a lane: the client and its connection.
type laneID struct {
	client string
	conn   uint64
}

// group is one client's lanes.
type group struct {
	client string
	lanes  map[uint64]*lane
	turns  []*lane // its connections with orders waiting, in turn
}

type lane struct {
	conn    uint64
	waiting []func() bool
}

// windowShare is the part of a node's connection window that the
// balancer's orders may take: the rest (an eighth, at least one) is kept
// for its probes, read-index rounds and reads, which must not wait behind
// orders. A window of one has nothing to keep.
func windowShare(nodeWindow int) int { return max(nodeWindow-max(nodeWindow/8, 1), 1) }

func newShare(size int) *share {
	return &share{size: size, groups: map[string]*group{}}
}

// tryTake takes a free slot if there is one.
func (s *share) tryTake() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used < s.size && len(s.turns) == 0 {
		s.used++
		return true
	}
	return false
}

// enqueue queues send, which found no free slot, in its lane: it runs
// later, in its lane's turn, on the goroutine of the release that frees a
// slot, and reports whether it took the slot (sent something that will
// release it); if not, the slot goes on to the next in turn. send must
// not block. If a slot came free meanwhile, it runs at once.
func (s *share) enqueue(id laneID, send func() bool) {
	s.mu.Lock()
	g := s.groups[id.client]
	if g == nil {
		g = &group{client: id.client, lanes: map[uint64]*lane{}}
		s.groups[id.client] = g
		s.turns = append(s.turns, g)
	}
	l := g.lanes[id.conn]
	if l == nil {
		l = &lane{conn: id.conn}
		g.lanes[id.conn] = l
		g.turns = append(g.turns, l)
	}
	l.waiting = append(l.waiting, send)
	s.queued++
	if s.used >= s.size {
		s.mu.Unlock()
		return
	}
	// Released between tryTake and here: take the slot for whoever is
	// first in turn (which may be another lane).
	s.used++
	first := s.next()
	s.mu.Unlock()
	if !first() {
		s.release()
	}
}

// release gives a slot back: to the first order of the next lane in
// turn, or to the free slots when no one waits (or the share shrank).
func (s *share) release() {
	for {
		s.mu.Lock()
		var send func() bool
		if s.used <= s.size {
			send = s.next()
		}
		if send == nil {
			s.used--
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if send() {
			return
		}
	}
}

// next takes the first waiting send of the lane whose turn it is (the
// next client's next connection), and moves that lane and that client to
// the back of their turns; s.mu held.
func (s *share) next() func() bool {
	if len(s.turns) == 0 {
		return nil
	}
	g := s.turns[0]
	s.turns = s.turns[1:]
	l := g.turns[0]
	g.turns = g.turns[1:]
	send := l.waiting[0]
	l.waiting[0] = nil
	l.waiting = l.waiting[1:]
	s.queued--
	if len(l.waiting) > 0 {
		g.turns = append(g.turns, l)
	} else {
		delete(g.lanes, l.conn)
	}
	if len(g.turns) > 0 {
		s.turns = append(s.turns, g)
	} else {
		delete(s.groups, g.client)
	}
	return send
}

// waiting is the number of sends waiting for their turn (status).
func (s *share) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

// wait takes a slot for a caller that waits for it (the retry loop):
// true when it has one, to give back with release; false if ctx ended or
// timeout passed first.
func (s *share) wait(ctx context.Context, id laneID, timeout time.Duration) bool {
	if s.tryTake() {
		return true
	}
	const waiting, granted, abandoned = 0, 1, 2
	var state atomic.Int32
	ready := make(chan struct{})
	s.enqueue(id, func() bool {
		if !state.CompareAndSwap(waiting, granted) {
			return false // its caller left: the slot goes on
		}
		close(ready)
		return true
	})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ready:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	if !state.CompareAndSwap(waiting, abandoned) {
		s.release() // granted as it gave up
	}
	return false
}

// resize sets the number of slots (the node's window changed): slots
// added go to waiting orders first; slots removed are taken back as they
// come free.
func (s *share) resize(size int) {
	s.mu.Lock()
	if size == s.size {
		s.mu.Unlock()
		return
	}
	s.size = size
	for s.used < s.size {
		send := s.next()
		if send == nil {
			break
		}
		s.used++
		s.mu.Unlock()
		if !send() {
			s.release()
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
}
