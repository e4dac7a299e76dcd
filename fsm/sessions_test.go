package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/google/btree"
	"github.com/hashicorp/raft"
)

func setLimits(n uint32) []byte {
	return AppendSetLimits(nil, SetLimits{MaxSessions: n, EvictIdle: DefaultEvictIdle})
}

// sameState compares two replicas' states; the eviction counter is a
// replica's own, not part of the state, and the records are compared by
// their contents (a B-tree's shape depends on the order of insertion).
func sameState(a, b *state) bool {
	ae, be := a.evicted, b.evicted
	ar, br := a.records, b.records
	a.evicted, b.evicted, a.records, b.records = 0, 0, nil, nil
	defer func() { a.evicted, b.evicted, a.records, b.records = ae, be, ar, br }()
	return reflect.DeepEqual(a, b) && reflect.DeepEqual(recordsOf(ar), recordsOf(br))
}

func recordsOf(t *btree.BTreeG[Record]) []Record {
	var rs []Record
	t.Ascend(func(r Record) bool { rs = append(rs, r); return true })
	return rs
}

// TestSessionCap: past the cap the least recently written session idle
// for the eviction idle time is evicted, a newer client is refused while none is,
// and a write of an evicted client after its first gets SessionExpired
// and changes nothing. A replica restored from a snapshot midway answers
// and ends the same.
func TestSessionCap(t *testing.T) {
	m := time.Minute
	log := logOf(
		setLimits(3),
		order(1, 1, 10, 1, 0),
		order(2, 1, 20, 1, time.Second),
		order(3, 1, 30, 1, 2*time.Second),
		order(3, 2, 30, 2, 3*time.Second),
		order(4, 1, 40, 1, 4*time.Second),     // 5: at the cap, every session young: refused
		order(1, 2, 10, 2, 2*m),               // 6: client 10 writes again: 20 is now the oldest
		order(4, 1, 40, 1, 2*m+time.Second),   // 7: evicts 20
		order(5, 1, 50, 1, 4*m),               // 8: evicts 30 (its last write at 3 s)
		order(3, 3, 30, 3, 4*m+time.Second),   // 9: 30 was evicted: SessionExpired
		order(1, 2, 10, 2, 4*m+2*time.Second), // 10: 10 lives: a duplicate
	)
	a := New(Options{})
	resA := a.ApplyBatch(log)
	b := New(Options{})
	var resB []interface{}
	for i := range log {
		resB = append(resB, b.ApplyBatch(log[i:i+1])...)
		if i == 6 {
			c := New(Options{})
			if err := c.Restore(io.NopCloser(bytes.NewReader(mustSnapshot(t, b)))); err != nil {
				t.Fatal(err)
			}
			b = c
		}
	}
	if !reflect.DeepEqual(resA, resB) {
		t.Fatalf("replicas answered differently:\n%v\n%v", resA, resB)
	}
	if !sameState(a.st, b.st) {
		t.Fatal("replicas reached different states")
	}
	if err := errOf(resA[5]); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("a new client at the cap with no idle session: %v, want ErrTooManySessions", err)
	}
	if err := errOf(resA[9]); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("a write of an evicted client: %v, want ErrSessionExpired", err)
	}
	if r := orderOf(resA[10]); !r.Duplicate {
		t.Fatal("a live session forgot its last seq")
	}
	var live []uint64
	for s := a.st.lru.head; s != nil; s = s.next {
		live = append(live, s.id)
	}
	if want := []uint64{40, 50, 10}; !reflect.DeepEqual(live, want) {
		t.Fatalf("sessions in eviction order: %v", live)
	}
	if rec, _ := a.Get(3); rec.OrderCount != 2 {
		t.Fatalf("customer 3 has %d orders, want 2 (the expired write changed nothing)", rec.OrderCount)
	}
	if rec, _ := a.Get(4); rec.OrderCount != 1 {
		t.Fatalf("customer 4 has %d orders, want 1 (the refused write changed nothing)", rec.OrderCount)
	}
	if a.Evicted() != 2 {
		t.Fatalf("evicted %d, want 2", a.Evicted())
	}
}

// TestNoLimitsKeepsVersionOneRules: until SetLimits is applied, a client
// without a session is taken as new whatever its seq (as version-1 nodes
// do), so old and new replicas agree during a rolling upgrade.
func TestNoLimitsKeepsVersionOneRules(t *testing.T) {
	f := New(Options{})
	res := f.ApplyBatch(logOf(order(1, 1, 10, 7, 0)))
	if err := errOf(res[0]); err != nil {
		t.Fatalf("seq 7 of a new client before SetLimits: %v", err)
	}
	if set, _ := f.Limits(); set {
		t.Fatal("limits set without SetLimits")
	}
}

// TestVersionTwoSnapshotRestores: a snapshot of the format before limits
// (version 2, sessions by client id) restores with no limits and its
// sessions in eviction order.
func TestVersionTwoSnapshotRestores(t *testing.T) {
	f := New(Options{})
	f.ApplyBatch(logOf(order(1, 1, 30, 1, 3*time.Second), order(1, 2, 10, 1, 5*time.Second), order(1, 3, 20, 1, 5*time.Second)))
	v3 := mustSnapshot(t, f)
	// Rewrite it as version 2: no limits bytes, sessions by client id.
	snap, _ := f.Snapshot()
	s := snap.(*snapshot)
	var buf bytes.Buffer
	h := crc32.New(castagnoli)
	w := io.MultiWriter(&buf, h)
	be := binary.BigEndian
	b := be.AppendUint32([]byte(snapMagic), 2)
	b = be.AppendUint64(b, uint64(s.now))
	b = be.AppendUint64(b, uint64(s.swept))
	b = be.AppendUint64(b, s.applied)
	b = be.AppendUint64(b, uint64(s.records.Len()))
	s.records.Ascend(func(r Record) bool {
		b = appendRecord(b, r)
		return true
	})
	b = be.AppendUint64(b, uint64(len(s.sessions)))
	for _, id := range []uint64{10, 20, 30} {
		for _, e := range s.sessions {
			if e.ClientID == id {
				b = be.AppendUint64(b, e.ClientID)
				b = be.AppendUint64(b, e.LastSeq)
				b = be.AppendUint64(b, uint64(e.LastSeen))
				b = appendResult(b, e.Result)
			}
		}
	}
	b = be.AppendUint32(b, 0)
	w.Write(b)
	buf.Write(be.AppendUint32(nil, h.Sum32()))
	g := New(Options{})
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	var order []uint64
	for s := g.st.lru.head; s != nil; s = s.next {
		order = append(order, s.id)
	}
	if !reflect.DeepEqual(order, []uint64{30, 10, 20}) {
		t.Fatalf("sessions after a version-2 restore: %v, want by (last seen, client id)", order)
	}
	if set, _ := g.Limits(); set {
		t.Fatal("a version-2 snapshot restored with limits")
	}
	if len(v3) == 0 {
		t.Fatal("no snapshot")
	}
}

// TestManyClientsStayAtTheCap: 1.5 million distinct client ids, one order
// each, against a cap of 100,000 sessions evictable after a second: the
// sessions stay at the cap and the heap with them, and the live sessions
// still answer retries from memory.
func TestManyClientsStayAtTheCap(t *testing.T) {
	if testing.Short() {
		t.Skip("1.5 million orders: skipped with -short")
	}
	const clients, limit = 1_500_000, 100_000
	f := New(Options{})
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: AppendSetLimits(nil, SetLimits{MaxSessions: limit, EvictIdle: time.Second})}})
	batch := make([]*raft.Log, 0, 1024)
	idx := uint64(2)
	for i := range clients {
		// 100 µs of leader time per order: a session is evictable 10,000
		// orders after its write, well before the cap is reached again.
		batch = append(batch, &raft.Log{Index: idx, Type: raft.LogCommand,
			Data: order(int32(i%1000), 1, uint64(i+1), 1, time.Duration(i)*100*time.Microsecond)})
		idx++
		if len(batch) == cap(batch) || i == clients-1 {
			for _, r := range f.ApplyBatch(batch) {
				if err := errOf(r); err != nil {
					t.Fatalf("order of client %d: %v", i, err)
				}
			}
			batch = batch[:0]
		}
	}
	if n := f.Sessions(); n != limit {
		t.Fatalf("%d sessions after %d clients, want the cap %d", n, clients, limit)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d clients, %d sessions kept, %d evicted; heap in use %d MB", clients, f.Sessions(), f.Evicted(), ms.HeapInuse>>20)
	if ms.HeapInuse > 200<<20 {
		t.Fatalf("heap in use %d MB: the sessions are not bounded", ms.HeapInuse>>20)
	}
	// The newest client's retry is answered from its session.
	last := f.ApplyBatch([]*raft.Log{{Index: idx, Type: raft.LogCommand,
		Data: order(int32((clients-1)%1000), 1, clients, 1, time.Duration(clients)*100*time.Microsecond)}})
	if r := orderOf(last[0]); !r.Duplicate {
		t.Fatal("a live session's retry was applied again")
	}
	// The first client's next write: its session was evicted.
	first := f.ApplyBatch([]*raft.Log{{Index: idx + 1, Type: raft.LogCommand,
		Data: order(0, 2, 1, 2, time.Duration(clients+1)*100*time.Microsecond)}})
	if err := errOf(first[0]); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("an evicted client's second write: %v, want ErrSessionExpired", err)
	}
}
