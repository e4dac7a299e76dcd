package peernet

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/pki"
)

// One node certificate, member or not, holds at most MaxPeerStreams peer
// streams on a port; another node's are not held up by it.
func TestPeerStreamsPerSenderAreBounded(t *testing.T) {
	dir := t.TempDir()
	if err := pki.EnsureDev(dir, []string{"n1", "n2", "n9"}, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	load := func(name string) *pki.Source {
		s, err := pki.Load(pki.InDir(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
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
		c, err := Dial(ctx, src, p.Addr(), []byte{StreamPeer})
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
