package shard

import "testing"

// The function is part of the protocol: these values never change.
func TestSlotsAreFixed(t *testing.T) {
	for _, c := range []struct {
		customer int32
		slot     uint16
	}{{0, 3015}, {1, 2244}, {7, 12076}, {2147483647, 14016}} {
		if got := SlotOf(c.customer); got != c.slot {
			t.Fatalf("SlotOf(%d) = %d, want %d", c.customer, got, c.slot)
		}
	}
}

func TestRangesCoverEverySlotOnce(t *testing.T) {
	for count := uint32(1); count <= MaxShards; count++ {
		next := uint32(0)
		for id := range count {
			lo, hi := Range(id, count)
			if lo != next || hi <= lo {
				t.Fatalf("count %d: shard %d holds [%d, %d), want it to start at %d and hold a slot", count, id, lo, hi, next)
			}
			next = hi
		}
		if next != Slots {
			t.Fatalf("count %d: ranges end at %d, want %d", count, next, Slots)
		}
	}
}

func TestOfAgreesWithRange(t *testing.T) {
	for _, count := range []uint32{1, 2, 3, 7, 9, 64, MaxShards} {
		for c := int32(0); c < 20000; c += 7 {
			id := Of(c, count)
			lo, hi := Range(id, count)
			if s := uint32(SlotOf(c)); id >= count || s < lo || s >= hi {
				t.Fatalf("count %d: customer %d (slot %d) placed in shard %d [%d, %d)", count, c, s, id, lo, hi)
			}
		}
	}
}

// Consecutive ids, as the seed's client uses, spread evenly.
func TestConsecutiveCustomersSpread(t *testing.T) {
	const count, customers = 9, 9000
	per := make([]int, count)
	for c := int32(0); c < customers; c++ {
		per[Of(c, count)]++
	}
	for id, n := range per {
		if n < customers/count*8/10 || n > customers/count*12/10 {
			t.Fatalf("shard %d holds %d of %d consecutive customers: %v", id, n, customers, per)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []uint32{0, MaxShards + 1} {
		if Check(c) == nil {
			t.Fatalf("Check(%d) = nil", c)
		}
	}
	if err := Check(3); err != nil {
		t.Fatal(err)
	}
}
