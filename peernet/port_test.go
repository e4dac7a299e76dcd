package peernet

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// One node certificate, member or not, holds at most MaxPeerStreams peer
// streams on a port; another node's are not held up by it.
func TestPeerStreamsPerSenderAreBounded(t *testing.T) {
	load := nodeCerts(t, "n1", "n2", "n9")
	var open atomic.Int32
	hold := make(chan struct{})
	p, err := Listen("127.0.0.1:0", load("n1"), 0, time.Second, func(string, GroupID, net.Conn) {},
		func(string, net.Conn) { open.Add(1); <-hold }, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer close(hold) // before Close, which waits for the streams
	dial := func(src *pki.Source) net.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Dial(ctx, src, "", p.Addr(), []byte{StreamPeer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	n9, n2 := load("n9"), load("n2")
	for range MaxPeerStreams + 4 {
		dial(n9)
	}
	waitFor(t, func() bool { return open.Load() == MaxPeerStreams }, "n9's streams to be taken")
	time.Sleep(100 * time.Millisecond) // the ones past the bound are closed, not held
	if got := open.Load(); got != MaxPeerStreams {
		t.Fatalf("n9 holds %d peer streams, want %d at most", got, MaxPeerStreams)
	}
	dial(n2)
	waitFor(t, func() bool { return open.Load() == MaxPeerStreams+1 }, "n2's stream beside n9's")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A burst of first calls through one pool dials one stream, not one per
// caller: the other node would refuse those past MaxPeerStreams. And the
// node that answers must be the member the caller meant.
func TestPoolDialsOnceForABurst(t *testing.T) {
	load := nodeCerts(t, "n1", "n2")
	srv := serve.NewOrderly(func(context.Context, serve.Caller, wire.Message) wire.Message { return wire.StatusInfo{ID: "n1"} }, serve.Options{})
	defer srv.Close()
	var streams atomic.Int32
	p, err := Listen("127.0.0.1:0", load("n1"), 0, time.Second, func(string, GroupID, net.Conn) {},
		func(name string, c net.Conn) {
			streams.Add(1)
			srv.ServeConn(c, serve.Caller{Name: name, Role: wire.RoleNode})
		}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pool := NewPool(load("n2"), 0)
	defer pool.Close()
	var failed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := pool.Get(ctx, "n1", p.Addr())
			if err == nil {
				_, err = c.Status(ctx)
			}
			if err != nil {
				failed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if f, s := failed.Load(), streams.Load(); f > 0 || s != 1 {
		t.Errorf("64 first calls at once: %d failed, %d streams dialed; want none and one", f, s)
	}
	// The node at that address is n1: it cannot answer for n3, though its
	// certificate is a node's of the same CA and hosts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := pool.Get(ctx, "n3", p.Addr()); err == nil {
		t.Error("n1's port answered a stream meant for member n3")
	}
}

// Connections of one address that never finish their header hold at
// most MaxOpening slots: the next one from there is closed at once, and
// another address's stream goes through.
func TestOpeningConnectionsPerSourceAreBounded(t *testing.T) {
	var streams atomic.Int32
	p, err := Listen("127.0.0.1:0", nil, 0, 10*time.Second, func(string, GroupID, net.Conn) { streams.Add(1) },
		func(string, net.Conn) {}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dialFrom := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range MaxOpening {
		dialFrom("127.0.0.1") // silent: holds its slot for the handshake timeout
	}
	time.Sleep(100 * time.Millisecond) // accepted and counted
	extra := dialFrom("127.0.0.1")
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %d from one address: %v, want it closed at once", MaxOpening+1, err)
	}
	other := dialFrom("127.0.0.2")
	if _, err := other.Write([]byte{StreamRaft}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return streams.Load() == 1 }, "another address's Raft stream")
}

// nodeCerts makes a CA and node certificates for names (hosts 127.0.0.1)
// and returns their loader.
func nodeCerts(t *testing.T, names ...string) func(name string) *pki.Source {
	t.Helper()
	dir := t.TempDir()
	if err := pki.EnsureDev(dir, names, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	return func(name string) *pki.Source {
		s, err := pki.Load(pki.InDir(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
