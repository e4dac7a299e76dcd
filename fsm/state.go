package fsm

import (
	"errors"
	"time"

	"github.com/google/btree"
)

// DefaultSessionTTL is how long, in leader time, a client session lives
// after its last write. It must be the same on every replica, so it is a
// constant of the cluster, not a per-node flag.
const DefaultSessionTTL = time.Hour

// Errors an order can be answered with instead of being applied.
var (
	// ErrStaleSeq: the client already applied a higher seq; this one is an
	// old retry whose result is no longer kept. Nothing changed.
	ErrStaleSeq = errors.New("fsm: seq is below the client's last applied seq")
	// ErrInvalidOrder: the leader let through an order it should have
	// refused (negative id, unknown type). Nothing changed.
	ErrInvalidOrder = errors.New("fsm: invalid order")
)

// Record is one customer's state. LastOrder is -1 and LastLaptopType -1
// for a customer with no order (the seed's convention).
type Record struct {
	CustomerID     int32
	LastOrder      int32
	OrderCount     uint64
	LastLaptopType int8
	LastIndex      uint64 // Raft index of the last order
}

// OrderResult is what an applied order returns to its client, and what a
// session keeps to answer a retry of the same seq.
type OrderResult struct {
	CustomerID  int32
	OrderNumber int32
	EngineerID  int32
	ExpertID    int32
	Index       uint64
	OrderCount  uint64 // the customer's order_count after this order
	// The small fields last: 40 bytes, so an Outcome (this and a refusal)
	// fits the allocator's 48-byte class.
	LaptopType uint8
	Duplicate  bool // true when a retry was answered from the session
}

// session is the exactly-once memory of one client (Raft dissertation §6.3).
type session struct {
	LastSeq  uint64
	LastSeen int64 // leader time of its last write
	Result   OrderResult

	id         uint64   // the client's
	prev, next *session // in state.lru (sessions.go)
}

// state is the data the log builds. It has no lock: FSM guards it.
type state struct {
	// records in customer id order (Scan, snapshots): O(log n) to find
	// and to insert, and a snapshot clones the tree in O(1) and writes
	// it out while orders go on (records.go).
	records  *btree.BTreeG[Record]
	sessions map[uint64]*session
	lru      sessionList         // the sessions, least recently written first
	members  map[string]string   // node id -> client address
	versions map[string]uint16   // node id -> command version it understands
	shards   map[uint32]SetShard // the shard map of a sharded cluster (shardmap.go)
	now      int64               // the highest leader time applied so far
	swept    int64               // leader time of the last session sweep
	applied  uint64              // index of the last log entry applied

	// Set by SetLimits (sessions.go); both false/0 until it is applied.
	limitsSet   bool
	maxSessions uint32        // 0: no cap
	evictIdle   time.Duration // a session idle less long is not evicted
	evicted     uint64        // sessions evicted at the cap (not in snapshots)
}

func newState() *state {
	return &state{
		records:  newRecords(),
		sessions: make(map[uint64]*session),
		members:  make(map[string]string),
		versions: make(map[string]uint16),
		shards:   make(map[uint32]SetShard),
	}
}

// placeOrder applies one order at log index idx.
func (s *state) placeOrder(c PlaceOrder, idx uint64, ttl int64) (OrderResult, error) {
	if c.LeaderTime > s.now {
		s.now = c.LeaderTime
	}
	s.sweepSessions(ttl)
	if c.CustomerID < 0 || c.OrderNumber < 0 || c.LaptopType > LaptopCustom || c.ClientID == 0 {
		return OrderResult{}, ErrInvalidOrder
	}
	sess := s.sessions[c.ClientID]
	if sess != nil && sess.LastSeen < s.now-ttl {
		// Expired but not swept yet: treat exactly as if it were gone, so
		// the outcome does not depend on when the sweep ran.
		s.dropSession(sess)
		sess = nil
	}
	if sess != nil {
		switch {
		case c.Seq == sess.LastSeq:
			sess.LastSeen = s.now
			s.lru.touch(sess)
			r := sess.Result
			r.Duplicate = true
			return r, nil
		case c.Seq < sess.LastSeq:
			return OrderResult{}, ErrStaleSeq
		}
	} else {
		if s.limitsSet && c.Seq > 1 {
			return OrderResult{}, ErrSessionExpired
		}
		var err error
		if sess, err = s.addSession(c.ClientID); err != nil {
			return OrderResult{}, err
		}
	}

	rec, _ := s.records.Get(Record{CustomerID: c.CustomerID})
	rec.CustomerID = c.CustomerID
	rec.LastOrder = c.OrderNumber
	rec.OrderCount++
	rec.LastLaptopType = int8(c.LaptopType)
	rec.LastIndex = idx
	s.records.ReplaceOrInsert(rec)

	res := OrderResult{CustomerID: c.CustomerID, OrderNumber: c.OrderNumber, LaptopType: c.LaptopType,
		EngineerID: c.EngineerID, ExpertID: c.ExpertID, Index: idx, OrderCount: rec.OrderCount}
	sess.LastSeq, sess.LastSeen, sess.Result = c.Seq, s.now, res
	s.lru.touch(sess)
	return res, nil
}

// sweepSessions drops expired sessions at most once per quarter TTL of
// leader time: they are at the head of the list (sessions.go).
func (s *state) sweepSessions(ttl int64) {
	if s.now-s.swept < ttl/4 {
		return
	}
	s.swept = s.now
	for s.lru.head != nil && s.lru.head.LastSeen < s.now-ttl {
		s.dropSession(s.lru.head)
	}
}

func (s *state) get(id int32) Record {
	if r, ok := s.records.Get(Record{CustomerID: id}); ok {
		return r
	}
	return Record{CustomerID: id, LastOrder: -1, LastLaptopType: -1}
}

// scan returns up to limit records with id >= from, and the id to continue
// from (-1 at the end).
func (s *state) scan(from int32, limit int) ([]Record, int32) {
	var out []Record
	next := int32(-1)
	s.records.AscendGreaterOrEqual(Record{CustomerID: from}, func(r Record) bool {
		if len(out) == limit {
			next = r.CustomerID
			return false
		}
		out = append(out, r)
		return true
	})
	return out, next
}
