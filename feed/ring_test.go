package feed

import (
	"errors"
	"sync"
	"testing"

	"orderly/fsm"
	"orderly/wire"
)

func ev(index uint64, customer int32) fsm.OrderResult {
	return fsm.OrderResult{Index: index, CustomerID: customer, OrderNumber: int32(index), OrderCount: index}
}

func indexes(es []wire.Event) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

func TestReadWholeEntriesInOrder(t *testing.T) {
	r := New(100, 10)
	if floor, through := r.Position(); floor != 11 || through != 10 {
		t.Fatalf("new ring at %d..%d", floor, through)
	}
	// Entry 12 packs three orders; 13 is a no-op; 14 has one.
	r.Applied([]fsm.OrderResult{ev(11, 1), ev(12, 1), ev(12, 2), ev(12, 3)}, 12)
	r.Advance(13)
	r.Applied([]fsm.OrderResult{ev(14, 2)}, 14)

	got, through, _, err := r.Read(nil, 11, 2, wire.WatchAll)
	if err != nil || through != 13 || len(got) != 4 {
		t.Fatalf("limit 2 from 11: %v through %d %v; want entries 11 and 12 whole, and the no-op 13", indexes(got), through, err)
	}
	got, through, _, err = r.Read(nil, through+1, 100, wire.WatchAll)
	if err != nil || through != 14 || len(got) != 1 || got[0].Index != 14 {
		t.Fatalf("from 14: %v through %d %v", indexes(got), through, err)
	}
	got, through, _, _ = r.Read(nil, 11, 100, 2)
	if len(got) != 2 || got[0].Index != 12 || got[1].Index != 14 || through != 14 {
		t.Fatalf("customer 2: %v through %d", indexes(got), through)
	}
	// Nothing new: the caller waits for changed.
	got, through, changed, err := r.Read(nil, 15, 100, wire.WatchAll)
	if err != nil || len(got) != 0 || through != 14 || changed == nil {
		t.Fatalf("from 15: %v %d %v", indexes(got), through, err)
	}
	r.Applied([]fsm.OrderResult{ev(15, 1)}, 15)
	select {
	case <-changed:
	default:
		t.Fatal("changed not closed by an append")
	}
}

func TestCompactedWhenOverwrittenOrReset(t *testing.T) {
	r := New(4, 0)
	r.Applied([]fsm.OrderResult{ev(1, 1), ev(2, 1), ev(2, 2), ev(3, 1)}, 3)
	r.Applied([]fsm.OrderResult{ev(4, 1)}, 4) // pushes out entry 1
	var c wire.Compacted
	if _, _, _, err := r.Read(nil, 1, 10, wire.WatchAll); !errors.As(err, &c) || c.Oldest != 2 {
		t.Fatalf("read from 1 after it was overwritten: %v", err)
	}
	r.Applied([]fsm.OrderResult{ev(5, 1)}, 5) // pushes out half of entry 2: all of it goes
	if _, _, _, err := r.Read(nil, 2, 10, wire.WatchAll); !errors.As(err, &c) || c.Oldest != 3 {
		t.Fatalf("read from 2 after part of it was overwritten: %v", err)
	}
	got, through, _, err := r.Read(nil, 3, 10, wire.WatchAll)
	if err != nil || through != 5 || len(got) != 3 {
		t.Fatalf("from 3: %v through %d %v", indexes(got), through, err)
	}
	r.Restored(100)
	if _, _, _, err := r.Read(nil, 6, 10, wire.WatchAll); !errors.As(err, &c) || c.Oldest != 101 {
		t.Fatalf("read from 6 after a snapshot at 100: %v", err)
	}
}

// TestWatchersNeverBlockTheWriter: the writer appends 200,000 events
// while readers follow; readers see every index once and in order, or are
// told they fell behind. Run with -race.
func TestWatchersNeverBlockTheWriter(t *testing.T) {
	r := New(1000, 0)
	const total = 200_000
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := uint64(1)
			var buf []wire.Event
			for next <= total {
				got, through, changed, err := r.Read(buf[:0], next, 64, wire.WatchAll)
				if err != nil {
					var c wire.Compacted
					if !errors.As(err, &c) || c.Oldest <= next {
						t.Errorf("watcher %d: %v", w, err)
						return
					}
					next = c.Oldest // a slow watcher starts again where it can
					continue
				}
				for _, e := range got {
					if e.Index != next {
						t.Errorf("watcher %d: event %d, want %d", w, e.Index, next)
						return
					}
					next++
				}
				if through >= next {
					t.Errorf("watcher %d: through %d but next %d", w, through, next)
					return
				}
				if len(got) == 0 {
					<-changed
				}
				buf = got
			}
		}()
	}
	for i := uint64(1); i <= total; i++ {
		r.Applied([]fsm.OrderResult{ev(i, int32(i%7))}, i)
	}
	wg.Wait()
}
