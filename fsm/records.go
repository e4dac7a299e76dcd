package fsm

import "github.com/google/btree"

// The customers' records live in a B-tree ordered by customer id, by
// value. A map of pointers found a record in O(1), but a snapshot had to
// copy every record while it held the FSM: 210 ms at a million customers,
// during which no order was applied (BenchmarkSnapshotMillion). A clone
// of the tree is O(1) and shares its nodes until either side writes to
// one (copy on write), so a snapshot holds the FSM for no time and is
// written out from its clone while orders go on; each write after a
// clone copies the few nodes on its path once.

// recordsDegree is the tree's degree: nodes of up to 63 records, about
// 2 KiB, which an order after a snapshot copies at most once per level.
const recordsDegree = 32

func newRecords() *btree.BTreeG[Record] {
	return btree.NewG(recordsDegree, func(a, b Record) bool { return a.CustomerID < b.CustomerID })
}
