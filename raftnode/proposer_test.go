package raftnode

import (
	"testing"

	"orderly/fsm"
)

func orders(cmds ...fsm.PlaceOrder) []*proposal {
	out := make([]*proposal, len(cmds))
	for i, c := range cmds {
		out[i] = &proposal{cmd: c}
	}
	return out
}

func cmdsOf(ps []*proposal) []fsm.PlaceOrder {
	out := make([]fsm.PlaceOrder, len(ps))
	for i, p := range ps {
		out[i] = p.cmd
	}
	return out
}

// pack takes the first order of each customer in arrival order; a
// customer's second order, and every later order of that order's client,
// wait for the next entry; others behind a flooded customer go now.
func TestPackIsFairAndKeepsEachClientsOrder(t *testing.T) {
	flood := func(seq uint64) fsm.PlaceOrder { return fsm.PlaceOrder{CustomerID: 9, ClientID: 1, Seq: seq} }
	waiting := orders(
		flood(1), flood(2), flood(3),
		fsm.PlaceOrder{CustomerID: 5, ClientID: 2, Seq: 1},
		fsm.PlaceOrder{CustomerID: 7, ClientID: 1, Seq: 4}, // client 1 is held: after its seq 2
		fsm.PlaceOrder{CustomerID: 9, ClientID: 3, Seq: 1}, // customer 9 is taken
		fsm.PlaceOrder{CustomerID: 6, ClientID: 3, Seq: 2}, // client 3 is held
		fsm.PlaceOrder{CustomerID: 8, ClientID: 4, Seq: 1},
	)
	batch, rest := pack(waiting)
	want := []fsm.PlaceOrder{flood(1), {CustomerID: 5, ClientID: 2, Seq: 1}, {CustomerID: 8, ClientID: 4, Seq: 1}}
	if got := cmdsOf(batch); !equal(got, want) {
		t.Fatalf("entry %+v, want %+v", got, want)
	}
	wantRest := []fsm.PlaceOrder{flood(2), flood(3), {CustomerID: 7, ClientID: 1, Seq: 4},
		{CustomerID: 9, ClientID: 3, Seq: 1}, {CustomerID: 6, ClientID: 3, Seq: 2}}
	if got := cmdsOf(rest); !equal(got, wantRest) {
		t.Fatalf("left %+v, want %+v", got, wantRest)
	}
	batch, rest = pack(rest)
	want = []fsm.PlaceOrder{flood(2)}
	if got := cmdsOf(batch); !equal(got, want) {
		t.Fatalf("second entry %+v, want %+v (client 3's order for customer 9 waits: customer 9 is in this entry)", got, want)
	}
	if len(rest) != 4 {
		t.Fatalf("left %+v", cmdsOf(rest))
	}
}

// An entry holds at most fsm.MaxOrdersPerEntry orders; the rest wait in
// order.
func TestPackCapsAnEntry(t *testing.T) {
	var cmds []fsm.PlaceOrder
	for i := range fsm.MaxOrdersPerEntry + 10 {
		cmds = append(cmds, fsm.PlaceOrder{CustomerID: int32(i), ClientID: uint64(i + 1), Seq: 1})
	}
	batch, rest := pack(orders(cmds...))
	if len(batch) != fsm.MaxOrdersPerEntry || len(rest) != 10 || rest[0].cmd.CustomerID != fsm.MaxOrdersPerEntry {
		t.Fatalf("entry of %d, %d left starting at customer %d", len(batch), len(rest), rest[0].cmd.CustomerID)
	}
}

func equal(a, b []fsm.PlaceOrder) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
