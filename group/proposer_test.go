package group

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

func waitingOf(ps []*proposal) *waiting {
	w := newWaiting()
	for _, p := range ps {
		w.add(p)
	}
	return w
}

// pack takes each client's orders in order until one is for a customer
// already in the entry; that one and the client's later orders wait for
// the next entry; other clients behind a flooded customer go now.
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
	w := waitingOf(waiting)
	want := []fsm.PlaceOrder{flood(1), {CustomerID: 5, ClientID: 2, Seq: 1}, {CustomerID: 8, ClientID: 4, Seq: 1}}
	if got := cmdsOf(w.pack()); !equal(got, want) {
		t.Fatalf("entry %+v, want %+v", got, want)
	}
	if w.n != 5 {
		t.Fatalf("%d orders left, want 5", w.n)
	}
	want = []fsm.PlaceOrder{flood(2)}
	if got := cmdsOf(w.pack()); !equal(got, want) {
		t.Fatalf("second entry %+v, want %+v (client 3's order for customer 9 waits: customer 9 is in this entry)", got, want)
	}
	want = []fsm.PlaceOrder{flood(3), {CustomerID: 7, ClientID: 1, Seq: 4}}
	if got := cmdsOf(w.pack()); !equal(got, want) {
		t.Fatalf("third entry %+v, want %+v", got, want)
	}
	want = []fsm.PlaceOrder{{CustomerID: 9, ClientID: 3, Seq: 1}, {CustomerID: 6, ClientID: 3, Seq: 2}}
	if got := cmdsOf(w.pack()); !equal(got, want) || w.n != 0 || len(w.clients) != 0 || len(w.byID) != 0 {
		t.Fatalf("fourth entry %+v, want %+v, and nothing left (%d orders, %d clients)", got, want, w.n, len(w.clients))
	}
}

// A client pipelining orders for different customers gets them all into
// one entry, in its order.
func TestPackTakesAPipelinedClientWhole(t *testing.T) {
	w := waitingOf(orders(fsm.PlaceOrder{CustomerID: 1, ClientID: 5, Seq: 1}, fsm.PlaceOrder{CustomerID: 2, ClientID: 5, Seq: 2},
		fsm.PlaceOrder{CustomerID: 3, ClientID: 5, Seq: 3}))
	if got := cmdsOf(w.pack()); len(got) != 3 || got[0].Seq != 1 || got[2].Seq != 3 {
		t.Fatalf("entry %+v, want seqs 1, 2, 3", got)
	}
}

// An entry holds at most fsm.MaxOrdersPerEntry orders; the rest wait in
// order.
func TestPackCapsAnEntry(t *testing.T) {
	var cmds []fsm.PlaceOrder
	for i := range fsm.MaxOrdersPerEntry + 10 {
		cmds = append(cmds, fsm.PlaceOrder{CustomerID: int32(i), ClientID: uint64(i + 1), Seq: 1})
	}
	w := waitingOf(orders(cmds...))
	if batch := w.pack(); len(batch) != fsm.MaxOrdersPerEntry || w.n != 10 {
		t.Fatalf("entry of %d, %d left", len(batch), w.n)
	}
	if rest := w.pack(); len(rest) != 10 || rest[0].cmd.CustomerID != fsm.MaxOrdersPerEntry {
		t.Fatalf("next entry of %d starting at customer %d", len(rest), rest[0].cmd.CustomerID)
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
