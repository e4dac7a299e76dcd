package lb

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// granted records the order in which sends got a slot.
type granted struct {
	mu  sync.Mutex
	got []string
}

func (g *granted) send(name string) func() bool {
	return func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.got = append(g.got, name)
		return true
	}
}

func (g *granted) list() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.got...)
}

func (g *granted) want(t *testing.T, want ...string) {
	t.Helper()
	got := g.list()
	if len(got) != len(want) {
		t.Fatalf("granted %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("granted %v, want %v", got, want)
		}
	}
}

// take is what Balancer.start does with an order: a free slot at once,
// else wait in the lane.
func (s *share) take(id laneID, send func() bool) {
	if !s.tryTake() {
		s.enqueue(id, send)
		return
	}
	if !send() {
		s.release()
	}
}

// conn is connection n of client "c".
func conn(n uint64) laneID { return laneID{client: "c", conn: n} }

// mustBeIdle checks that every slot came back and no lane is left.
func (s *share) mustBeIdle(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used != 0 || s.queued != 0 || len(s.groups) != 0 || len(s.turns) != 0 {
		t.Fatalf("after every release: %d slots taken, %d sends queued, %d clients in turn", s.used, s.queued, len(s.turns))
	}
}

func (s *share) taken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// A lane that queued many orders does not go before one that queued one:
// slots go lane by lane.
func TestShareTakesLanesInTurn(t *testing.T) {
	s := newShare(2)
	var g granted
	s.take(conn(1), g.send("flood1"))
	s.take(conn(1), g.send("flood2"))
	g.want(t, "flood1", "flood2") // free slots: at once
	for i := range 3 {
		s.take(conn(1), g.send("flood"+string(rune('3'+i))))
	}
	s.take(conn(2), g.send("other"))
	g.want(t, "flood1", "flood2")
	s.release()
	s.release()
	g.want(t, "flood1", "flood2", "flood3", "other")
	s.release()
	s.release()
	g.want(t, "flood1", "flood2", "flood3", "other", "flood4", "flood5")
	s.release()
	s.release()
	s.mustBeIdle(t)
}

// A client with many connections gets one client's turns: here "flood"
// queues on three connections, "b" on one; b goes every other turn, and
// flood's connections take turns among themselves.
func TestShareTurnsGoByClientThenConnection(t *testing.T) {
	s := newShare(1)
	var g granted
	s.take(laneID{"flood", 1}, g.send("f1a"))
	for _, c := range []uint64{1, 2, 3} {
		s.take(laneID{"flood", c}, g.send(fmt.Sprintf("f%db", c)))
	}
	s.take(laneID{"b", 1}, g.send("b1"))
	s.take(laneID{"b", 1}, g.send("b2"))
	for range 5 {
		s.release()
	}
	g.want(t, "f1a", "f1b", "b1", "f2b", "b2", "f3b")
	s.release()
	s.mustBeIdle(t)
}

// A send that does not take its slot (it answered without sending) hands
// it to the next in turn, at once and on take's goroutine too.
func TestShareSlotNotTakenGoesOn(t *testing.T) {
	s := newShare(1)
	var g granted
	s.take(conn(1), func() bool { return false })
	if n := s.taken(); n != 0 {
		t.Fatalf("a send that did not take its slot left %d taken", n)
	}
	s.take(conn(1), g.send("a"))
	s.take(conn(2), func() bool { return false })
	s.take(conn(3), g.send("c"))
	s.release()
	g.want(t, "a", "c")
	s.release()
	s.mustBeIdle(t)
}

func TestShareWait(t *testing.T) {
	s := newShare(1)
	ctx := context.Background()
	if !s.wait(ctx, conn(1), time.Second) {
		t.Fatal("no slot from an empty share")
	}
	if s.wait(ctx, conn(2), 20*time.Millisecond) {
		t.Fatal("a slot from a full share")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if s.wait(cancelled, conn(2), time.Minute) {
		t.Fatal("a slot after the caller's context ended")
	}
	// Those two left their places in the turns: a release must pass over
	// them to the one still waiting.
	got := make(chan bool)
	go func() { got <- s.wait(ctx, conn(3), time.Minute) }()
	waitUntil(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.groups["c"] != nil && s.groups["c"].lanes[3] != nil
	})
	s.release()
	if !<-got {
		t.Fatal("the waiting caller got no slot from a release")
	}
	s.release()
	s.mustBeIdle(t)
}

func TestShareResize(t *testing.T) {
	s := newShare(1)
	var g granted
	s.take(conn(1), g.send("a"))
	s.take(conn(2), g.send("b"))
	s.take(conn(3), g.send("c"))
	s.resize(2) // the new slot goes to the first waiting
	g.want(t, "a", "b")
	s.resize(1) // taken back as slots come free
	s.release()
	g.want(t, "a", "b")
	s.release()
	g.want(t, "a", "b", "c")
	s.release()
	s.mustBeIdle(t)
}

func TestWindowShareKeepsRoom(t *testing.T) {
	for window, want := range map[int]int{1: 1, 2: 1, 3: 2, 8: 7, 16: 14, 1024: 896} {
		if got := windowShare(window); got != want {
			t.Errorf("windowShare(%d) = %d, want %d", window, got, want)
		}
	}
}

// Many clients take and give back at once (-race): every send runs once,
// no more than the share's slots are out at a time, and all come back.
func TestShareConcurrent(t *testing.T) {
	const size, clients, each = 8, 16, 500
	s := newShare(size)
	var mu sync.Mutex
	out, most, ran := 0, 0, 0
	done := make(chan struct{}, size)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				s.take(conn(uint64(c)), func() bool {
					mu.Lock()
					out++
					ran++
					most = max(most, out)
					mu.Unlock()
					done <- struct{}{}
					return true
				})
			}
		}()
	}
	// The "node": answers sends, which releases their slots.
	for range clients * each {
		<-done
		mu.Lock()
		out--
		mu.Unlock()
		s.release()
	}
	wg.Wait()
	if ran != clients*each || most > size || s.taken() != 0 {
		t.Fatalf("ran %d of %d, at most %d out of %d slots, %d taken at the end", ran, clients*each, most, size, s.taken())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// An order that waits for its turn longer than the retry budget is
// answered Overloaded and never sent (surely not applied), and one whose
// client left while it waited is not sent either; the orders that held
// the slots are answered as usual. The node here takes three requests of
// a connection at a time (orders two of them), and answers an order for
// each token it is given.
func TestOrderWaitingPastItsBudgetIsNotSent(t *testing.T) {
	var seen atomic.Int32
	tokens := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node := serve.Orderly(ln, func(ctx context.Context, _ serve.Caller, req wire.Message) wire.Message {
		switch r := req.(type) {
		case wire.Status:
			return wire.StatusInfo{ID: "n1", Role: "leader", Term: 1, Stats: []wire.Stat{{Name: serve.StatMaxInFlight, Value: 3}}}
		case wire.Order:
			seen.Add(1)
			<-tokens
			return wire.LaptopInfo{CustomerID: r.CustomerID, OrderNumber: r.OrderNumber, Index: 1}
		}
		return wire.Errorf(wire.CodeBadRequest, "not here")
	}, serve.Options{})
	defer node.Close()
	cfg := DefaultConfig()
	cfg.Listen, cfg.Backends, cfg.RetryTimeout = "127.0.0.1:0", []string{ln.Addr().String()}, 300*time.Millisecond
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer close(tokens) // before the balancer and the node close, on any way out
	waitUntil(t, func() bool { be := b.pool.currentLeader(); return be != nil && be.share.size == 2 })
	waiting := func(n int) func() bool { // orders waiting in lanes of the one plaintext client
		return func() bool {
			s := b.pool.currentLeader().share
			s.mu.Lock()
			defer s.mu.Unlock()
			return n == 0 && len(s.groups) == 0 || s.groups[""] != nil && len(s.groups[""].lanes) == n
		}
	}

	dial := func() *wire.Conn {
		c, err := wire.Dial(context.Background(), b.Addr(), wire.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	type result struct {
		li  wire.LaptopInfo
		err error
	}
	order := func(c *wire.Conn, customer int32, out chan<- result) {
		li, err := c.Order(context.Background(), wire.Order{CustomerID: customer, OrderNumber: 1, ClientID: uint64(customer), Seq: 1})
		out <- result{li, err}
	}
	holder, waiter, leaver := dial(), dial(), dial()
	held := make(chan result, 4)
	hold := func(first int32) { // two orders take both slots
		t.Helper()
		before := seen.Load()
		go order(holder, first, held)
		go order(holder, first+1, held)
		waitUntil(t, func() bool { return seen.Load() == before+2 })
	}
	answerHeld := func() {
		t.Helper()
		tokens <- struct{}{}
		tokens <- struct{}{}
		for range 2 {
			if r := <-held; r.err != nil {
				t.Fatalf("an order that held a slot: %v", r.err)
			}
		}
	}

	// Past its budget: Overloaded, not sent.
	hold(1)
	waited := make(chan result, 1)
	go order(waiter, 3, waited)
	waitUntil(t, waiting(1))
	stat(t, b, "orders_waiting_turn", 1)
	time.Sleep(2 * cfg.RetryTimeout)
	answerHeld()
	if r := <-waited; code(r.err) != wire.CodeOverloaded {
		t.Fatalf("an order that waited past its budget: %v, %v; want Overloaded", r.li, r.err)
	}
	stat(t, b, "orders_turn_expired", 1)
	stat(t, b, "orders_waiting_turn", 0)
	// Its client gone: not sent, however soon its turn comes.
	hold(4)
	go order(leaver, 6, make(chan result, 1))
	waitUntil(t, waiting(1))
	leaver.Close()
	time.Sleep(50 * time.Millisecond) // for the balancer to see it go
	answerHeld()
	waitUntil(t, waiting(0))
	time.Sleep(50 * time.Millisecond) // for a wrongly sent order to arrive
	if n := seen.Load(); n != 4 {
		t.Fatalf("the node saw %d orders, want the 4 that held the slots", n)
	}
}

func code(err error) wire.Code {
	c, _ := wire.CodeOf(err)
	return c
}

// stat checks one line of the balancer's status.
func stat(t *testing.T, b *Balancer, name string, want uint64) {
	t.Helper()
	for _, s := range b.Status().Stats {
		if s.Name == name {
			if s.Value != want {
				t.Fatalf("status %s = %d, want %d", name, s.Value, want)
			}
			return
		}
	}
	t.Fatalf("status has no %s", name)
}
