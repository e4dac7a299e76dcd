package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orderly/client"
	"orderly/harness"
	"orderly/wire"
)

// watched collects a watcher's frames and checks them as they come: index
// order, and per customer each order once, numbered 1, 2, 3...
type watched struct {
	mu      sync.Mutex
	through uint64
	last    map[int32]int32 // customer -> last order number seen
	count   map[int32]uint64
	err     error
}

func newWatched() *watched { return &watched{last: map[int32]int32{}, count: map[int32]uint64{}} }

func (w *watched) add(e wire.Events) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Through < w.through {
		w.err = fmt.Errorf("through went back: %d after %d", e.Through, w.through)
	}
	for _, ev := range e.Events {
		if ev.Index <= w.through || ev.Index > e.Through {
			w.err = fmt.Errorf("event at index %d in a frame after %d through %d", ev.Index, w.through, e.Through)
		}
		if want := w.last[ev.CustomerID] + 1; ev.OrderNumber != want {
			w.err = fmt.Errorf("customer %d: order %d seen after %d (index %d): lost, repeated or out of order",
				ev.CustomerID, ev.OrderNumber, w.last[ev.CustomerID], ev.Index)
		}
		w.last[ev.CustomerID] = ev.OrderNumber
		w.count[ev.CustomerID]++
		if ev.OrderCount != w.count[ev.CustomerID] {
			w.err = fmt.Errorf("customer %d: event says %d orders, %d seen", ev.CustomerID, ev.OrderCount, w.count[ev.CustomerID])
		}
	}
	w.through = max(w.through, e.Through)
	return w.err
}

// failed is the first thing the watcher saw wrong (it then stops).
func (w *watched) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *watched) seen(customer int32) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count[customer]
}

// follow runs c.Watch in the background until the test ends.
func follow(t *testing.T, c *client.Client, from uint64, customer int32) (*watched, <-chan error) {
	t.Helper()
	w := newWatched()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, from, customer, w.add) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, done
}

// TestWatch: watchers through the balancer, on every node (a client that
// resumes elsewhere when its node dies) and of one customer see every
// acknowledged order once, in order, across a SIGKILL of the leader; a
// restarted node no longer holds what its snapshot covers and says so
// (Compacted, with the oldest index it serves).
func TestWatch(t *testing.T) {
	c := startCluster(t)
	lb := startBalancer(t, c)
	viaLB, lbDone := follow(t, mustClient(t, lb.Addr), 1, wire.WatchAll)
	leader := mustLeader(t, c)
	// This one starts on the leader, which dies: it must resume on another.
	onLeader, leaderDone := follow(t, mustClient(t, append([]string{leader.ClientAddr}, c.Addrs()...)...), 1, wire.WatchAll)
	// From the index after what is applied now, not 0 ("from now"): the
	// watch may reach its node after the first orders are applied.
	st, err := c.Status(context.Background(), leader.ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	one, oneDone := follow(t, mustClient(t, c.Addrs()...), st.AppliedIndex+1, 3)

	const customers, orders = 4, 150
	o := startOrdering(t, []string{lb.Addr}, customers, orders)
	acked := o.acked
	waitFor(t, 30*time.Second, "a third of the orders", func() bool { return acked[0].Load() >= orders/3 })
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	o.stop(t, true)
	for name, w := range map[string]*watched{"via the balancer": viaLB, "from the killed leader on": onLeader} {
		waitFor(t, 20*time.Second, "the watcher "+name+" to see every order", func() bool {
			if w.failed() != nil {
				return true // reported below
			}
			for i := range customers {
				if w.seen(int32(i)) != uint64(acked[i].Load()) {
					return false
				}
			}
			return true
		})
		if w.err != nil {
			t.Fatalf("watcher %s: %v", name, w.err)
		}
	}
	waitFor(t, 20*time.Second, "the watcher of customer 3", func() bool {
		return one.failed() != nil || one.seen(3) == uint64(acked[3].Load())
	})
	if one.seen(0) != 0 || one.failed() != nil {
		t.Fatalf("the watcher of customer 3 saw customer 0's orders, or: %v", one.err)
	}
	for _, done := range []<-chan error{lbDone, leaderDone, oneDone} {
		select {
		case err := <-done:
			t.Fatalf("a watcher stopped: %v", err)
		default:
		}
	}

	// The new leader takes a snapshot (a backup does), is killed and
	// restarts from it: what the snapshot covers is gone from its feed.
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	mustOrderctl(t, c.Addrs(), "snapshot", "save", t.TempDir()+"/b.backup")
	leader = mustLeader(t, c)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := leader.WaitUp(wctx); err != nil {
		t.Fatal(err)
	}
	st, err = harness.Status(context.Background(), leader.ClientAddr, certs.Admin())
	if err != nil {
		t.Fatal(err)
	}
	oldest := statOf(st, "watch_oldest_index")
	if oldest <= 1 {
		t.Fatalf("restarted node serves the feed from index %d: its snapshot should cover the start", oldest)
	}
	err = mustClient(t, leader.ClientAddr).Watch(context.Background(), 1, wire.WatchAll, func(wire.Events) error { return nil })
	var compacted wire.Compacted
	if !errors.As(err, &compacted) || compacted.Oldest != oldest {
		t.Fatalf("watch from index 1 on the restarted node: %v; want Compacted with oldest %d", err, oldest)
	}
	out, err := orderctl(t, []string{leader.ClientAddr}, "watch", "--from-index", "1", "--for", "5s")
	if err == nil || !strings.Contains(out, "Compacted") || !strings.Contains(out, fmt.Sprintf("--from-index %d", oldest)) {
		t.Fatalf("orderctl watch from index 1 on the restarted node: %v\n%s", err, out)
	}
	t.Logf("restarted node serves the feed from index %d: %s", oldest, strings.TrimSpace(out))
	// From the oldest it holds, it serves.
	mustOrderctl(t, c.Addrs(), "order", "--customer", "9", "--number", "1")
	out = mustOrderctl(t, []string{leader.ClientAddr}, "--json", "watch", "--from-index", fmt.Sprint(oldest), "--count", "1", "--for", "20s")
	if !strings.Contains(out, `"index"`) {
		t.Fatalf("orderctl watch from the oldest index: %s", out)
	}
}

// TestSlowWatcherCutOff: a watcher that never reads is cut off once the
// node's feed (--watch-history 2000) moves past it; writes go on meanwhile
// and the node holds no more for it than its connection's reply budget
// (--max-reply-bytes 64 KiB).
func TestSlowWatcherCutOff(t *testing.T) {
	c := startCluster(t, "--watch-history", "2000", "--max-reply-bytes", "65536")
	leader := mustLeader(t, c)
	host, _, _ := net.SplitHostPort(leader.ClientAddr)
	// A small receive buffer from the start: the kernel holds little for
	// it either, and what the node holds is what it must bound.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	nc, err := d.Dial("tcp", leader.ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := tls.Client(nc, certs.Admin()(host))
	if err := wire.ClientHandshake(tc, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write(wire.AppendFrame(nil, 1, wire.Watch{From: 0, Customer: wire.WatchAll})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the watcher to be counted", func() bool {
		st, err := harness.Status(context.Background(), leader.ClientAddr, certs.Admin())
		return err == nil && statOf(st, "watchers") == 1
	})

	// 16 writers, 3,200 orders each: far more than the reply budget and
	// the feed's 2,000 can hold for a watcher that does not read.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func(cust int32) {
			defer wg.Done()
			cl := mustClient(t, leader.ClientAddr)
			s, err := cl.NewSession()
			if err != nil {
				errs <- err
				return
			}
			for k := int32(1); k <= 3200; k++ {
				if _, err := s.Order(context.Background(), cust, k, wire.Regular); err != nil {
					errs <- err
					return
				}
			}
		}(int32(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("51,200 orders in %v with a watcher that does not read", time.Since(start).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "the slow watcher to be cut off", func() bool {
		st, err := harness.Status(context.Background(), leader.ClientAddr, certs.Admin())
		return err == nil && statOf(st, "watchers") == 0
	})
	log, err := os.ReadFile(leader.LogPath)
	if err != nil || !strings.Contains(string(log), "watcher cut off: too slow") {
		t.Fatalf("the node's log does not say why the watcher was cut off (%v)", err)
	}
	// Its connection is closed: reading what was sent ends.
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := wire.NewFrameReader(tc, 0)
	frames := 0
	for {
		if _, err := fr.ReadFrame(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the cut-off watcher's connection is still open after %d frames", frames)
			}
			break
		}
		frames++
	}
	t.Logf("the cut-off watcher read %d frames, then its connection ended", frames)
}

// TestWatchMisuse: a Watch of a negative customer is refused; past
// --max-watchers a Watch is Overloaded and the node says so; a frame sent
// on a watching connection ends the stream (the connection carries
// nothing else); a reader (the least role) may watch.
func TestWatchMisuse(t *testing.T) {
	c := startCluster(t, "--max-watchers", "2")
	n := c.Nodes[0]
	dial := wire.DialOptions{TLS: certs.Admin()}
	ctx := context.Background()
	bad, err := wire.DialWatch(ctx, n.ClientAddr, dial, wire.Watch{Customer: -5})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var we *wire.Error
	if _, err := bad.Next(); !errors.As(err, &we) || we.Code != wire.CodeBadRequest {
		t.Fatalf("watch of customer -5: %v, want BadRequest", err)
	}
	readerTLS, err := certs.Client("reader")
	if err != nil {
		t.Fatal(err)
	}
	var streams []*wire.WatchStream
	for range 2 {
		s, err := wire.DialWatch(ctx, n.ClientAddr, wire.DialOptions{TLS: readerTLS}, wire.Watch{Customer: wire.WatchAll})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	waitFor(t, 10*time.Second, "two watchers", func() bool {
		st, err := harness.Status(ctx, n.ClientAddr, certs.Admin())
		return err == nil && statOf(st, "watchers") == 2
	})
	third, err := wire.DialWatch(ctx, n.ClientAddr, dial, wire.Watch{Customer: wire.WatchAll})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := third.Next(); !errors.As(err, &we) || we.Code != wire.CodeOverloaded || !strings.Contains(we.Message, "--max-watchers") {
		t.Fatalf("a third watcher past --max-watchers 2: %v, want Overloaded", err)
	}
	// A reader's stream carries orders.
	mustOrderctl(t, c.Addrs(), "order", "--customer", "1", "--number", "1")
	for {
		e, err := streams[0].Next()
		if err != nil {
			t.Fatalf("reader's watch: %v", err)
		}
		if len(e.Events) > 0 {
			break
		}
	}
	// Anything sent on a watching connection ends its stream.
	raw := rawDial(t, n.ClientAddr)
	helloOK(t, raw)
	raw.Write(wire.AppendFrame(nil, 1, wire.Watch{Customer: wire.WatchAll}))
	raw.Write(wire.AppendFrame(nil, 2, wire.Status{}))
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := wire.NewFrameReader(raw, 0)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("a watching connection that was sent a Status is still open")
			}
			break
		}
		if f.ID == 2 {
			t.Fatal("a watching connection answered a Status")
		}
	}
	waitFor(t, 10*time.Second, "the ended watch to be let go", func() bool {
		st, err := harness.Status(ctx, n.ClientAddr, certs.Admin())
		return err == nil && statOf(st, "watchers") == 2
	})
}

// TestWatchersPerClient: one reader certificate holds 64 watch streams
// of a node (--max-watchers-per-client); its 65th is answered Overloaded,
// and another client still watches. --max-watchers is the node's; without
// a bound per client one client took every slot.
func TestWatchersPerClient(t *testing.T) {
	c := startCluster(t)
	n := mustLeader(t, c)
	opts := func(name string) wire.DialOptions {
		tlsFor, err := certs.Client(name)
		if err != nil {
			t.Fatal(err)
		}
		return wire.DialOptions{TLS: tlsFor, Timeout: 5 * time.Second}
	}
	var streams []*wire.WatchStream
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	for range 64 {
		s, err := wire.DialWatch(context.Background(), n.ClientAddr, opts("reader"), wire.Watch{Customer: wire.WatchAll})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	mustOrders(t, c.Addrs(), 4, 1)
	for i, s := range streams { // each is watching: it sees the order
		if _, err := s.Next(); err != nil {
			t.Fatalf("watcher %d of the reader: %v", i, err)
		}
	}
	extra, err := wire.DialWatch(context.Background(), n.ClientAddr, opts("reader"), wire.Watch{Customer: wire.WatchAll})
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if _, err := extra.Next(); !strings.Contains(fmt.Sprint(err), "Overloaded") || !strings.Contains(fmt.Sprint(err), "max-watchers-per-client") {
		t.Fatalf("the reader's 65th watcher: %v, want Overloaded (--max-watchers-per-client)", err)
	}
	other, err := wire.DialWatch(context.Background(), n.ClientAddr, opts("writer"), wire.Watch{Customer: wire.WatchAll})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustClient(t, c.Addrs()...).Order(context.Background(), 4, 2, wire.Regular) //nolint:errcheck // checked by the watcher
	if ev, err := other.Next(); err != nil || len(ev.Events) == 0 {
		t.Fatalf("another client's watcher: %+v, %v", ev, err)
	}
}
