//go:build faults

package raftnode

import (
	"testing"
	"time"

	"orderly/faults"
	"orderly/wire"
)

// TestReadIndexIsTheCommitIndex replays the schedule of Ongaro's thesis
// §6.4 that an applied-index ReadIndex gets wrong:
//  1. order N is committed while the leader's FSM is stalled, so the
//     leader has not applied it;
//  2. a follower applies N and serves a linearizable read that sees N;
//  3. a later linearizable read on the leader must see N too. With the
//     leader's applied index as read index it answered without N at once.
func TestReadIndexIsTheCommitIndex(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	follower := tc.followerOf(leader)
	const customer = 7
	if _, ok := call(t, leader, wire.Order{CustomerID: customer, OrderNumber: 1, ClientID: 5, Seq: 1}).(wire.LaptopInfo); !ok {
		t.Fatal("first order failed")
	}

	release := faults.StallApply(leader.fsm)
	defer release()
	ordered := make(chan wire.Message, 1)
	go func() { // acknowledged only once the stall ends
		ordered <- call(t, leader, wire.Order{CustomerID: customer, OrderNumber: 2, ClientID: 5, Seq: 2})
	}()

	// Step 1-2: the follower applies order 2 while the leader cannot.
	deadline := time.Now().Add(10 * time.Second)
	for rec, _ := follower.fsm.Get(customer); rec.OrderCount < 2; rec, _ = follower.fsm.Get(customer) {
		if time.Now().After(deadline) {
			t.Fatal("the follower never applied order 2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rec, _ := leader.fsm.Get(customer); rec.OrderCount != 1 {
		t.Fatalf("the stalled leader applied order 2 anyway: %+v", rec)
	}
	first, ok := call(t, follower, wire.Get{CustomerID: customer, Consistency: wire.Linearizable}).(wire.Record)
	if !ok || first.OrderCount != 2 {
		t.Fatalf("linearizable read on the follower: %+v, want 2 orders", first)
	}

	// Step 3: a read that begins after the first one returned.
	second := make(chan wire.Message, 1)
	go func() { second <- call(t, leader, wire.Get{CustomerID: customer, Consistency: wire.Linearizable}) }()
	var got wire.Message
	select {
	case got = <-second: // answered while the FSM is stalled: it must still see order 2
	case <-time.After(500 * time.Millisecond):
		release() // the read waits for the FSM, as it must; let it go on
		got = <-second
	}
	rec, ok := got.(wire.Record)
	if !ok || rec.OrderCount != 2 {
		t.Fatalf("linearizable read on the leader after one on the follower saw order 2: %+v; the read went back in time", got)
	}
	t.Logf("follower read %d orders at index %d; the later leader read %d orders at index %d",
		first.OrderCount, first.ReadIndex, rec.OrderCount, rec.ReadIndex)
	release()
	if li, ok := (<-ordered).(wire.LaptopInfo); !ok || li.OrderCount != 2 {
		t.Fatalf("order 2: %+v", li)
	}
}
