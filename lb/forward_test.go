package lb

import (
	"context"
	"net"
	"testing"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// A client that hangs up while its request is at a node is no failure of
// the node or the balancer: no failure counted, no retry, no probe storm.
func TestClientGoneIsNoFailure(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node := serve.Orderly(ln, func(ctx context.Context, _ serve.Caller, req wire.Message) wire.Message {
		switch req.(type) {
		case wire.Status:
			return wire.StatusInfo{ID: "n1", Role: "leader", Term: 1}
		case wire.Get:
		default: // the pool's shard map probe, which a node of one group refuses
			return &wire.Error{Code: wire.CodeBadRequest, Message: "unknown request"}
		}
		arrived <- struct{}{}
		select { // hold the read until the client is gone
		case <-release:
		case <-ctx.Done():
		}
		return wire.Record{CustomerRecord: wire.CustomerRecord{CustomerID: 1}, ReadIndex: 1}
	}, serve.Options{})
	defer node.Close()

	cfg := DefaultConfig()
	cfg.Listen, cfg.Backends = "127.0.0.1:0", []string{ln.Addr().String()}
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	for start := time.Now(); b.pool.currentLeader() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the balancer never saw the node lead")
		}
	}
	conn, err := wire.Dial(context.Background(), b.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go conn.Get(context.Background(), wire.Get{CustomerID: 1, Consistency: wire.Linearizable}) //nolint:errcheck // cut off on purpose
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the read never reached the node")
	}
	conn.Close()
	// The old code counted its retry and failure within a millisecond of
	// the hang-up; half a second is a wide window for them to show.
	time.Sleep(500 * time.Millisecond)
	close(release)
	if n := b.failures.Load(); n != 0 {
		t.Errorf("%d failures counted for a client that hung up", n)
	}
	if n := b.retries.Load(); n != 0 {
		t.Errorf("%d retries for a client that hung up", n)
	}
	if len(arrived) != 0 {
		t.Errorf("the request was sent to the node again after its client left")
	}
}
