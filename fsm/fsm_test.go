package fsm

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink that keeps the bytes in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// logOf turns commands into consecutive log entries from index 1.
func logOf(cmds ...[]byte) []*raft.Log {
	logs := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: c}
	}
	return logs
}

func order(customer, number int32, client, seq uint64, at time.Duration) []byte {
	return AppendPlaceOrder(nil, PlaceOrder{CustomerID: customer, OrderNumber: number, LaptopType: LaptopCustom,
		EngineerID: 3, ExpertID: 1, ClientID: client, Seq: seq, LeaderTime: int64(at)})
}

func mustSnapshot(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func TestApplySnapshotRestore(t *testing.T) {
	f := New(Options{})
	var cmds [][]byte
	for i := int32(0); i < 300; i++ {
		cmds = append(cmds, order(i%37, i, uint64(i%11+1), uint64(i/11+1), time.Duration(i)*time.Second))
	}
	cmds = append(cmds, AppendSetMember(nil, SetMember{ID: "n1", ClientAddr: "127.0.0.1:6001"}))
	f.ApplyBatch(logOf(cmds...))

	data := mustSnapshot(t, f)
	g := New(Options{})
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !sameState(f.st, g.st) {
		t.Fatal("restored state differs from the original")
	}
	if !bytes.Equal(data, mustSnapshot(t, g)) {
		t.Fatal("a snapshot of the restored state has other bytes")
	}
	recs, next, idx := g.Scan(0, 1000)
	if len(recs) != 37 || next != -1 || idx != 301 {
		t.Fatalf("scan after restore: %d records, next %d, index %d", len(recs), next, idx)
	}
	if g.ClientAddr("n1") != "127.0.0.1:6001" {
		t.Fatal("member address lost in snapshot")
	}
}

func TestRetriedSeqAppliedOnce(t *testing.T) {
	f := New(Options{})
	res := f.ApplyBatch(logOf(
		order(5, 1, 42, 1, 0),
		order(5, 1, 42, 1, time.Second), // retry of seq 1
		order(5, 2, 42, 2, 2*time.Second),
		order(5, 1, 42, 1, 3*time.Second), // late retry of seq 1: stale
	))
	first, retry := orderOf(res[0]), orderOf(res[1])
	if !retry.Duplicate || retry.Index != first.Index || retry.OrderNumber != 1 {
		t.Fatalf("retry answered %+v, want the stored result of index %d", retry, first.Index)
	}
	if !errors.Is(errOf(res[3]), ErrStaleSeq) {
		t.Fatalf("stale retry answered %v", res[3])
	}
	rec, _ := f.Get(5)
	if rec.OrderCount != 2 || rec.LastOrder != 2 || rec.LastIndex != 3 {
		t.Fatalf("record %+v, want 2 orders, last 2 at index 3", rec)
	}
}

func TestInvalidOrderChangesNothing(t *testing.T) {
	f := New(Options{})
	res := f.ApplyBatch(logOf(order(-1, 1, 1, 1, 0)))
	if !errors.Is(errOf(res[0]), ErrInvalidOrder) {
		t.Fatalf("negative customer answered %v", res[0])
	}
	if recs, _, _ := f.Scan(0, 10); len(recs) != 0 || f.Sessions() != 0 {
		t.Fatal("an invalid order left state behind")
	}
}

func TestUndecodableCommandStopsNode(t *testing.T) {
	f := New(Options{})
	defer func() {
		if recover() == nil {
			t.Fatal("an undecodable command was applied around")
		}
	}()
	f.ApplyBatch(logOf([]byte{99, 1, 2}))
}

// TestSessionExpiryIsDeterministic applies one log to replicas that see it
// in different batches and snapshot at different points: expiry must come
// out the same everywhere, because it depends only on leader_time.
func TestSessionExpiryIsDeterministic(t *testing.T) {
	ttl := time.Minute
	log := logOf(
		order(1, 1, 100, 1, 0),
		order(2, 1, 200, 1, 10*time.Second),
		order(2, 2, 200, 2, 50*time.Second),
		order(3, 1, 300, 1, 90*time.Second),  // client 100 has expired now
		order(1, 1, 100, 1, 100*time.Second), // so its retry is applied again
		order(2, 2, 200, 2, 105*time.Second), // client 200 lives: a duplicate
	)
	a := New(Options{SessionTTL: ttl})
	resA := a.ApplyBatch(log)

	b := New(Options{SessionTTL: ttl})
	var resB []interface{}
	for i := range log {
		resB = append(resB, b.ApplyBatch(log[i:i+1])...)
		if i == 2 { // a replica restored from a snapshot midway
			c := New(Options{SessionTTL: ttl})
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
	if r := orderOf(resA[4]); r.Duplicate {
		t.Fatal("retry after expiry was answered from an expired session")
	}
	if r := orderOf(resA[5]); !r.Duplicate {
		t.Fatal("live session forgot its last seq")
	}
	if rec, _ := a.Get(1); rec.OrderCount != 2 {
		t.Fatalf("customer 1 has %d orders, want 2", rec.OrderCount)
	}
	if _, ok := a.st.sessions[100]; !ok {
		t.Fatal("client 100 should have a new session")
	}
}

func TestCorruptSnapshotRefused(t *testing.T) {
	f := New(Options{})
	f.ApplyBatch(logOf(order(1, 1, 1, 1, 0), order(2, 2, 2, 1, 0)))
	good := mustSnapshot(t, f)
	flip := append([]byte(nil), good...)
	flip[30] ^= 0x01
	cases := map[string][]byte{
		"bit flip":       flip,
		"truncated":      good[:len(good)-9],
		"no checksum":    good[:len(good)-4],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"bad magic":      append([]byte("NOTSNAP!"), good[8:]...),
		"empty":          nil,
	}
	for name, data := range cases {
		g := New(Options{})
		g.ApplyBatch(logOf(order(9, 9, 9, 1, 0)))
		err := g.Restore(io.NopCloser(bytes.NewReader(data)))
		if !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: got %v, want ErrCorruptSnapshot", name, err)
		}
		if rec, _ := g.Get(9); rec.OrderCount != 1 {
			t.Errorf("%s: a refused restore changed the state", name)
		}
	}
}

func TestPersistCancelsOnError(t *testing.T) {
	f := New(Options{})
	f.ApplyBatch(logOf(order(1, 1, 1, 1, 0)))
	snap, _ := f.Snapshot()
	sink := &failSink{}
	if err := snap.Persist(sink); err == nil || !sink.cancelled {
		t.Fatalf("persist to a failing sink: err %v, cancelled %v", err, sink.cancelled)
	}
}

type failSink struct{ memSink }

func (s *failSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestPlaceOrdersEntry: several orders in one entry apply in order at the
// entry's index, each with its own answer; a retried seq inside is
// answered from the session; the state equals that of one entry per order.
func TestPlaceOrdersEntry(t *testing.T) {
	po := func(customer, number int32, client, seq uint64) PlaceOrder {
		return PlaceOrder{CustomerID: customer, OrderNumber: number, ClientID: client, Seq: seq, LeaderTime: int64(time.Second)}
	}
	batched := New(Options{})
	out := batched.ApplyBatch(logOf(
		AppendPlaceOrder(nil, po(1, 1, 10, 1)),
		AppendPlaceOrders(nil, []PlaceOrder{po(1, 2, 10, 2), po(2, 1, 20, 1), po(3, 1, 10, 2), po(-1, 1, 30, 1)}),
	))
	batch := ResultOf(out[1])
	if batch.Len() != 4 {
		t.Fatalf("batch answer %#v", out[1])
	}
	res := []Outcome{batch.Outcome(0), batch.Outcome(1), batch.Outcome(2), batch.Outcome(3)}
	first := res[0].Order
	if first.Index != 2 || first.OrderCount != 2 {
		t.Fatalf("first order of the batch: %+v", first)
	}
	if r := res[1].Order; r.Index != 2 || r.OrderCount != 1 {
		t.Fatalf("second order of the batch: %+v", r)
	}
	if r := res[2].Order; !r.Duplicate || r.Index != first.Index {
		t.Fatalf("a retry of seq 2 inside the batch was applied again: %+v", r)
	}
	if err := res[3].Err(); !errors.Is(err, ErrInvalidOrder) {
		t.Fatalf("a negative customer id in a batch: %v", res[3])
	}
	if r, _ := batched.Get(3); r.OrderCount != 0 {
		t.Fatalf("customer 3 got the duplicate: %+v", r)
	}
	if r, _ := batched.Get(1); r.OrderCount != 2 || r.LastIndex != 2 {
		t.Fatalf("customer 1: %+v", r)
	}

	// Undecodable batches stop the node like any bad command.
	for _, bad := range [][]byte{
		{byte(CmdPlaceOrders)},
		{byte(CmdPlaceOrders), 0, 0},
		append(AppendPlaceOrders(nil, []PlaceOrder{po(1, 1, 1, 1)}), 0),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("undecodable batch %x applied", bad)
				}
			}()
			New(Options{}).ApplyBatch(logOf(bad))
		}()
	}
}

// orderOf and errOf read the single order's outcome of an entry's Result.
func orderOf(res interface{}) OrderResult { return ResultOf(res).Outcome(0).Order }
func errOf(res interface{}) error         { return ResultOf(res).Outcome(0).Err() }

// TestScanPagesInOrder: customers created in random order are scanned in
// id order, page by page, each exactly once, with next naming the first
// id of the next page (-1 after the last).
func TestScanPagesInOrder(t *testing.T) {
	f := New(Options{})
	const n = 5000
	now := time.Now().UnixNano()
	want := map[int32]bool{}
	for i := range n {
		id := int32((uint64(i) * 2654435761) % 100_000)
		want[id] = true
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: AppendPlaceOrder(nil, PlaceOrder{CustomerID: id, OrderNumber: 1,
			ClientID: 3, Seq: uint64(i + 1), LeaderTime: now})})
	}
	seen, last := 0, int32(-1)
	for from := int32(0); from >= 0; {
		recs, next, _ := f.Scan(from, 333)
		for _, r := range recs {
			if r.CustomerID <= last || !want[r.CustomerID] {
				t.Fatalf("scan gave customer %d after %d", r.CustomerID, last)
			}
			last = r.CustomerID
			seen++
		}
		if next >= 0 && (len(recs) != 333 || next <= last) {
			t.Fatalf("page of %d ending at %d says next %d", len(recs), last, next)
		}
		from = next
	}
	if seen != len(want) {
		t.Fatalf("scan saw %d customers of %d", seen, len(want))
	}
}
