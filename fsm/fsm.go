package fsm

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/faults"
)

// Options configure an FSM. The zero value is usable.
type Options struct {
	// SessionTTL is how long a client session lives after its last write, in
	// leader time. Every replica must use the same value. Default
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// Logger; default hclog.NewNullLogger().
	Logger hclog.Logger
	// SnapshotPersisted, if set, is told the size and the time of each
	// snapshot written (metrics).
	SnapshotPersisted func(bytes uint64, took time.Duration)
	// Fatal is called, on raft's FSM goroutine, with a
	// *NeedsUpgradeError when a committed entry cannot be applied; it must
	// not return (the node must stop: applying around the entry would let
	// replicas diverge). Default: panic.
	Fatal func(error)
	// Changes, if set, is told of every order applied and every restore
	// (the change feed, package feed).
	Changes Changes
}

// Changes is told, on raft's FSM goroutine and under the state's lock,
// of what the state machine did. It must not block: a slow watcher of
// the change feed must never hold up applying.
type Changes interface {
	// Applied: the orders applied (retries answered from a session are
	// not) by entries up to through, in index order. orders is reused
	// after the call.
	Applied(orders []OrderResult, through uint64)
	// Restored: the state was replaced by a snapshot at through.
	Restored(through uint64)
}

// FSM is the order state machine behind raft. It implements
// raft.BatchingFSM.
type FSM struct {
	ttl   int64
	log   hclog.Logger
	fatal func(error)
	// persisted is Options.SnapshotPersisted.
	persisted func(bytes uint64, took time.Duration)

	// applied counts the orders this replica applied since it started, by
	// laptop type, and the retries it answered from a session (metrics).
	applied    [2]atomic.Uint64
	duplicates atomic.Uint64

	changes Changes       // Options.Changes; nil: none
	batch   []OrderResult // the orders of the batch being applied, for changes

	// config is the last configuration entry this replica applied since
	// it started (Raft hands a BatchingFSM those too): the group's
	// committed configuration. It is not state: a restored snapshot's is
	// in its raft.SnapshotMeta, and the caller takes the newer.
	config atomic.Pointer[Configuration]

	mu sync.RWMutex
	st *state
	// appliedCh is closed and replaced each time applied moves, waking
	// the callers of Applied that wait for it.
	appliedCh chan struct{}
}

var _ raft.BatchingFSM = (*FSM)(nil)

// New returns an empty FSM.
func New(opt Options) *FSM {
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = DefaultSessionTTL
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	if opt.Fatal == nil {
		opt.Fatal = func(err error) { panic(err) }
	}
	return &FSM{ttl: int64(opt.SessionTTL), log: opt.Logger, fatal: opt.Fatal, persisted: opt.SnapshotPersisted, st: newState(), appliedCh: make(chan struct{}),
		changes: opt.Changes}
}

// Apply applies one committed log entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// Outcome is one order's answer: its result, or why it was refused (an
// answer for the client, not an apply failure). It holds no pointers, so
// boxing it into raft's interface{} is a cheap allocation the garbage
// collector never scans.
type Outcome struct {
	Order   OrderResult
	Refused Refusal
}

// Refusal says why an order was refused; RefusedNone if it was not.
type Refusal uint8

const (
	RefusedNone Refusal = iota
	RefusedStaleSeq
	RefusedInvalid
	RefusedSessionExpired
	RefusedTooManySessions
)

// Err is the refusal as an error (ErrStaleSeq, ErrInvalidOrder), or nil.
func (o Outcome) Err() error {
	switch o.Refused {
	case RefusedStaleSeq:
		return ErrStaleSeq
	case RefusedInvalid:
		return ErrInvalidOrder
	case RefusedSessionExpired:
		return ErrSessionExpired
	case RefusedTooManySessions:
		return ErrTooManySessions
	}
	return nil
}

func outcomeOf(res OrderResult, err error) Outcome {
	switch err {
	case nil:
		return Outcome{Order: res}
	case ErrStaleSeq:
		return Outcome{Refused: RefusedStaleSeq}
	case ErrSessionExpired:
		return Outcome{Refused: RefusedSessionExpired}
	case ErrTooManySessions:
		return Outcome{Refused: RefusedTooManySessions}
	}
	return Outcome{Refused: RefusedInvalid}
}

// Result is the typed view of what ApplyBatch answers for one entry
// (raft's ApplyFuture.Response): one Outcome per order, in the command's
// order; none for entries without orders.
type Result struct{ resp interface{} }

// ResultOf reads an ApplyFuture's Response.
func ResultOf(resp interface{}) Result { return Result{resp} }

// Len is the number of orders the entry carried.
func (r Result) Len() int {
	switch v := r.resp.(type) {
	case Outcome:
		return 1
	case []Outcome:
		return len(v)
	}
	return 0
}

// Outcome is the answer to the entry's i-th order (0 <= i < Len()).
func (r Result) Outcome(i int) Outcome {
	switch v := r.resp.(type) {
	case Outcome:
		return v
	case []Outcome:
		return v[i]
	}
	return Outcome{}
}

// ApplyBatch applies committed entries in order under one lock. Read each
// response with ResultOf: an Outcome for a one-order entry, []Outcome for
// a packed one, nil otherwise. A command that cannot
// be decoded stops the node through Options.Fatal: it can only come from
// a leader bug or a newer version, and applying around it would let
// replicas diverge (DESIGN §3).
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	faults.BeforeApply(f)
	f.mu.Lock()
	for i, l := range logs {
		switch l.Type {
		case raft.LogCommand:
			out[i] = f.applyCommand(l)
		case raft.LogConfiguration:
			f.config.Store(&Configuration{Index: l.Index, Servers: raft.DecodeConfiguration(l.Data).Servers})
		}
		f.st.applied = l.Index
	}
	if f.changes != nil {
		f.changes.Applied(f.batch, f.st.applied)
		f.batch = f.batch[:0]
	}
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
	return out
}

func (f *FSM) applyCommand(l *raft.Log) interface{} {
	res, err := f.decodeAndApply(l)
	if err != nil {
		err = &NeedsUpgradeError{Index: l.Index, Term: l.Term, Needs: entryVersion(l.Extensions), Have: Version, Cause: err}
		f.log.Error("cannot apply log entry: stopping so that replicas do not diverge",
			"index", l.Index, "term", l.Term, "error", err)
		f.mu.Unlock() // readers go on answering until the node is gone
		f.fatal(err)
		f.mu.Lock()
	}
	return res
}

func (f *FSM) decodeAndApply(l *raft.Log) (interface{}, error) {
	if len(l.Data) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrBadCommand)
	}
	switch CommandType(l.Data[0]) {
	case CmdPlaceOrder:
		c, err := decodePlaceOrder(l.Data)
		if err != nil {
			return nil, err
		}
		return f.placeOrder(c, l.Index), nil
	case CmdPlaceOrders:
		cs, err := decodePlaceOrders(l.Data)
		if err != nil {
			return nil, err
		}
		out := make([]Outcome, len(cs))
		for i, c := range cs {
			out[i] = f.placeOrder(c, l.Index)
		}
		return out, nil
	case CmdSetLimits:
		c, err := decodeSetLimits(l.Data)
		if err != nil {
			return nil, err
		}
		f.st.setLimits(c)
		return nil, nil
	case CmdSetShard:
		c, err := decodeSetShard(l.Data)
		if err != nil {
			return nil, err
		}
		f.st.setShard(c)
		return nil, nil
	case CmdSetMember:
		c, err := decodeSetMember(l.Data)
		if err != nil {
			return nil, err
		}
		f.st.members[c.ID] = c.ClientAddr
		f.st.versions[c.ID] = max(c.Version, 1)
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown command type %d", ErrBadCommand, l.Data[0])
}

// placeOrder applies one order at index idx and returns its outcome.
func (f *FSM) placeOrder(c PlaceOrder, idx uint64) Outcome {
	if faults.ForgetSession() { // no memory of earlier seqs, and no SessionExpired either
		if sess := f.st.sessions[c.ClientID]; sess != nil {
			f.st.dropSession(sess)
		}
		c.Seq = 1
	}
	if faults.LoseOrder(idx) && c.CustomerID >= 0 { // answer as if applied, record nothing
		rec := f.st.get(c.CustomerID)
		return Outcome{Order: OrderResult{CustomerID: c.CustomerID, OrderNumber: c.OrderNumber, LaptopType: c.LaptopType,
			EngineerID: c.EngineerID, ExpertID: c.ExpertID, Index: idx, OrderCount: rec.OrderCount + 1}}
	}
	res, err := f.st.placeOrder(c, idx, f.ttl)
	switch {
	case err != nil:
	case res.Duplicate:
		f.duplicates.Add(1)
	default:
		f.applied[c.LaptopType&1].Add(1)
		if f.changes != nil {
			f.batch = append(f.batch, res)
		}
	}
	return outcomeOf(res, err)
}

// OrdersApplied counts the orders this replica applied since it started,
// regular and custom, and the retries it answered from a session.
func (f *FSM) OrdersApplied() (regular, custom, duplicates uint64) {
	return f.applied[LaptopRegular].Load(), f.applied[LaptopCustom].Load(), f.duplicates.Load()
}

// AppliedIndex is the index of the last entry applied to this FSM.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.applied
}

// Get returns a customer's record and the applied index it was read at.
func (f *FSM) Get(id int32) (Record, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.get(id), f.st.applied
}

// Scan returns up to limit records with id >= from in id order, the id to
// continue from (-1 at the end), and the applied index they were read at.
func (f *FSM) Scan(from int32, limit int) ([]Record, int32, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	recs, next := f.st.scan(from, limit)
	return recs, next, f.st.applied
}

// Configuration is a group's configuration and the index of its entry.
type Configuration struct {
	Index   uint64
	Servers []raft.Server
}

// Configuration is the last configuration entry applied since the
// replica started; zero if none.
func (f *FSM) Configuration() Configuration {
	if c := f.config.Load(); c != nil {
		return *c
	}
	return Configuration{}
}

// ClientAddr returns the published client address of node id.
func (f *FSM) ClientAddr(id string) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.members[id]
}

// MemberVersion is the command version node id has published (1 if it
// has published none).
func (f *FSM) MemberVersion(id string) uint16 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return max(f.st.versions[id], 1)
}

// ForgetClientAddrs drops the client addresses members published: a
// state restored into a new cluster (orderd --restore) must not send its
// clients to the old cluster's nodes. Each node publishes its own again.
func (f *FSM) ForgetClientAddrs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.st.members)
}

// Sessions is the number of live client sessions (for status and tests).
func (f *FSM) Sessions() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.st.sessions)
}

// Limits reports whether SetLimits has been applied, and the limits.
func (f *FSM) Limits() (set bool, l SetLimits) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.limitsSet, SetLimits{MaxSessions: f.st.maxSessions, EvictIdle: f.st.evictIdle}
}

// Evicted is the number of sessions this replica evicted at the cap since
// it started (for status).
func (f *FSM) Evicted() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.evicted
}

// Snapshot captures the state: a copy of every record, session and member,
// sorted so the bytes do not depend on map order. Persist writes it out
// while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.st
	snap := &snapshot{persisted: f.persisted, now: st.now, swept: st.swept, applied: st.applied, limitsSet: st.limitsSet, maxSessions: st.maxSessions, evictIdle: st.evictIdle,
		records: st.records.Clone(), sessions: make([]sessionEntry, 0, len(st.sessions))}
	// In eviction order, which a restore must rebuild exactly.
	for s := st.lru.head; s != nil; s = s.next {
		e := sessionEntry{ClientID: s.id, session: *s}
		e.prev, e.next = nil, nil
		snap.sessions = append(snap.sessions, e)
	}
	for id, addr := range st.members {
		snap.members = append(snap.members, SetMember{ID: id, ClientAddr: addr, Version: st.versions[id]})
	}
	sort.Slice(snap.members, func(i, j int) bool { return snap.members[i].ID < snap.members[j].ID })
	for _, sh := range st.shards {
		snap.shards = append(snap.shards, SetShard{ID: sh.ID, Epoch: sh.Epoch, Term: sh.Term, Leader: sh.Leader,
			Replicas: slices.Clone(sh.Replicas)})
	}
	sort.Slice(snap.shards, func(i, j int) bool { return snap.shards[i].ID < snap.shards[j].ID })
	return snap, nil
}

// Applied returns the applied index and a channel closed when it next
// moves, so a caller can wait for it together with other events.
func (f *FSM) Applied() (uint64, <-chan struct{}) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.applied, f.appliedCh
}

// Summary counts what the state holds (orderctl snapshot inspect).
type Summary struct {
	Applied   uint64 // index of the last entry applied
	Customers int
	Orders    uint64
	Sessions  int
	Members   map[string]string // node id -> published client address
}

// Summary counts the state's customers, orders and sessions.
func (f *FSM) Summary() Summary {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := Summary{Applied: f.st.applied, Customers: f.st.records.Len(), Sessions: len(f.st.sessions), Members: map[string]string{}}
	f.st.records.Ascend(func(r Record) bool {
		s.Orders += r.OrderCount
		return true
	})
	for id, addr := range f.st.members {
		s.Members[id] = addr
	}
	return s
}
