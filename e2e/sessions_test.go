package e2e

import (
	"context"
	"testing"
	"time"

	"orderly/client"
	"orderly/wire"
)

func statOf(st wire.StatusInfo, name string) uint64 {
	for _, s := range st.Stats {
		if s.Name == name {
			return s.Value
		}
	}
	return 0
}

// TestSessionCap: a cluster that keeps 20 sessions, evictable after 1 s
// idle. A new client finding none idle is refused (Overloaded, not
// applied); later ones evict the least recently written; every node keeps
// exactly 20; an evicted client's next write gets SessionExpired and
// changes nothing; a live session's retry is answered from memory.
func TestSessionCap(t *testing.T) {
	c := startCluster(t, "--max-sessions", "20", "--session-evict-idle", "1s")
	leader := mustLeader(t, c)
	ctx := context.Background()
	waitFor(t, 10*time.Second, "the cap to reach every node", func() bool {
		for _, n := range c.Nodes {
			st, err := c.Status(ctx, n.ClientAddr)
			if err != nil || statOf(st, "sessions_max") != 20 {
				return false
			}
		}
		return true
	})
	conn, err := wire.Dial(ctx, leader.ClientAddr, wire.DialOptions{TLS: certs.Admin()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	order := func(clientID, seq uint64, customer int32) (wire.LaptopInfo, error) {
		return conn.Order(ctx, wire.Order{CustomerID: customer, OrderNumber: int32(seq), ClientID: clientID, Seq: seq})
	}
	for id := uint64(1); id <= 20; id++ {
		if _, err := order(id, 1, int32(id)); err != nil {
			t.Fatalf("client %d: %v", id, err)
		}
	}
	if _, err := order(21, 1, 21); err == nil {
		t.Fatal("a 21st client was taken while every session is younger than 1 s")
	} else if code, _ := wire.CodeOf(err); code != wire.CodeOverloaded {
		t.Fatalf("a 21st client: %v, want Overloaded", err)
	}
	time.Sleep(1200 * time.Millisecond)
	keep, err := order(20, 2, 20) // client 20 writes again: it is now the most recent
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(100); id < 139; id++ {
		if _, err := order(id, 1, 5); err != nil {
			t.Fatalf("client %d after the idle time: %v", id, err)
		}
		if id == 118 {
			time.Sleep(1200 * time.Millisecond) // the first batch of new ones idles too
		}
	}
	for _, n := range c.Nodes {
		waitFor(t, 10*time.Second, n.ID+" to apply everything", func() bool {
			st, err := c.Status(ctx, n.ClientAddr)
			return err == nil && st.AppliedIndex >= keep.Index+39
		})
		st, err := c.Status(ctx, n.ClientAddr)
		if err != nil {
			t.Fatal(err)
		}
		if got := statOf(st, "sessions"); got != 20 {
			t.Errorf("%s keeps %d sessions, want the cap 20", n.ID, got)
		}
		if statOf(st, "sessions_evicted") == 0 {
			t.Errorf("%s evicted nothing", n.ID)
		}
	}
	// Client 1 (evicted) writes again: SessionExpired, nothing applied.
	before := mustGet(t, mustClient(t, c.Addrs()...), 1, wire.Linearizable)
	if _, err := order(1, 2, 1); err == nil {
		t.Fatal("an evicted client's second write was applied")
	} else if code, _ := wire.CodeOf(err); code != wire.CodeSessionExpired {
		t.Fatalf("an evicted client's second write: %v, want SessionExpired", err)
	}
	if after := mustGet(t, mustClient(t, c.Addrs()...), 1, wire.Linearizable); after.OrderCount != before.OrderCount {
		t.Fatalf("customer 1 went from %d to %d orders on a refused write", before.OrderCount, after.OrderCount)
	}
	// Client 138 (live) retries its write: the first answer, applied once.
	again, err := order(138, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	first := mustGet(t, mustClient(t, c.Addrs()...), 5, wire.Linearizable)
	if first.LastIndex != again.Index {
		t.Fatalf("a live session's retry: index %d, the record's last order at %d", again.Index, first.LastIndex)
	}
	// The client library renews a forgotten session by itself.
	cl, err := client.New(client.Options{Addrs: c.Addrs(), RetryTimeout: 10 * time.Second, TLS: certs.Admin()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Order(ctx, 7, 1, wire.Regular); err != nil {
		t.Fatalf("a new client library session: %v", err)
	}
}
