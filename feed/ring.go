// Package feed is the change feed's memory on a node: the most recent
// applied orders in index order, shared by every watcher of the node.
// The state machine appends to it (it is the FSM's fsm.Changes) and never
// waits for a watcher; each watcher reads from its own position, and one
// that falls behind what the ring still holds is told so (Compacted) and
// cut off.
package feed

import (
	"fmt"
	"sort"
	"sync"

	"orderly/fsm"
	"orderly/wire"
)

// Ring holds the last orders applied, at most its capacity. It keeps
// them as the state machine hands them over: turning them into wire
// events is the watchers' work, not Apply's.
type Ring struct {
	mu  sync.Mutex
	buf []fsm.OrderResult // circular
	// head is the position of the oldest event in buf, n how many are held.
	head, n int
	// floor: every event with an index >= floor is held (or not applied
	// yet); through: every entry up to it is applied and its events held.
	floor, through uint64
	changed        chan struct{} // closed and replaced on every change
}

// New returns an empty ring of capacity events whose state is applied up
// to through (the state machine's applied index when the node started).
func New(capacity int, through uint64) *Ring {
	return &Ring{buf: make([]fsm.OrderResult, max(capacity, 1)), floor: through + 1, through: through,
		changed: make(chan struct{})}
}

var _ fsm.Changes = (*Ring)(nil)

// Applied adds the orders of applied entries up to through, in index
// order; the oldest make room. It never blocks on a watcher.
func (r *Ring) Applied(orders []fsm.OrderResult, through uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range orders {
		if r.n == len(r.buf) {
			old := r.buf[r.head]
			r.head = (r.head + 1) % len(r.buf)
			r.n--
			// Other events of old's entry may remain, but a reader may
			// start only at a whole entry: the next one.
			r.floor = max(r.floor, old.Index+1)
		}
		r.buf[(r.head+r.n)%len(r.buf)] = e
		r.n++
	}
	r.advance(through)
}

// Advance says entries up to through are applied without events of their
// own (no-ops, membership, a batch of duplicates).
func (r *Ring) Advance(through uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(through)
}

func (r *Ring) advance(through uint64) {
	r.through = max(r.through, through)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Restored forgets every order: the state machine was replaced by a
// snapshot at through, and orders before it can no longer be told.
func (r *Ring) Restored(through uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.head, r.n = 0, 0
	r.floor, r.through = through+1, through
	close(r.changed)
	r.changed = make(chan struct{})
}

// Position says what the ring can serve: every event from floor to
// through.
func (r *Ring) Position() (floor, through uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.floor, r.through
}

// Read appends to dst the events of customer (wire.WatchAll for every
// one) in the entries from index from on, at most about limit of them
// but never part of an entry, and says the last entry they cover. When
// nothing new is applied yet (through < from), changed is closed at the
// next change. A from the ring no longer holds is a *wire.Compacted.
func (r *Ring) Read(dst []wire.Event, from uint64, limit int, customer int32) (events []wire.Event, through uint64, changed <-chan struct{}, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if from < r.floor {
		return dst, 0, nil, wire.Compacted{Oldest: r.floor,
			Message: fmt.Sprintf("the orders from index %d are no longer held (the node holds them from index %d)", from, r.floor)}
	}
	if from > r.through {
		return dst, r.through, r.changed, nil
	}
	at := func(i int) *fsm.OrderResult { return &r.buf[(r.head+i)%len(r.buf)] }
	i := sort.Search(r.n, func(i int) bool { return at(i).Index >= from })
	through = r.through
	limit = max(limit, 1)
	taken := 0
	for ; i < r.n; i++ {
		e := at(i)
		if taken >= limit && e.Index != at(i-1).Index {
			through = e.Index - 1 // whole entries are in; stop before the next
			break
		}
		taken++
		if customer == wire.WatchAll || e.CustomerID == customer {
			dst = append(dst, wire.Event{Index: e.Index, CustomerID: e.CustomerID, OrderNumber: e.OrderNumber,
				LaptopType: wire.LaptopType(e.LaptopType), EngineerID: e.EngineerID, ExpertID: e.ExpertID, OrderCount: e.OrderCount})
		}
	}
	return dst, through, r.changed, nil
}
