package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/wire"
)

func echoStatus(context.Context, Caller, wire.Message) wire.Message { return wire.StatusInfo{ID: "n1"} }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Past MaxConns a new connection gets the busy answer; the open ones keep
// working, and once one closes a new one is taken again.
func TestMaxConnsRefusesWithBusy(t *testing.T) {
	srv := Orderly(listen(t), echoStatus, Options{Bounds: Bounds{MaxConns: 2}})
	defer srv.Close()
	ctx := context.Background()
	var open []*wire.Conn
	for range 2 {
		c, err := wire.Dial(ctx, srv.Addr(), wire.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	if _, err := wire.Dial(ctx, srv.Addr(), wire.DialOptions{}); !errors.Is(err, wire.ErrServerBusy) {
		t.Fatalf("a third connection: %v, want ErrServerBusy", err)
	}
	if _, err := open[0].Status(ctx); err != nil {
		t.Fatalf("an open connection stopped working at the limit: %v", err)
	}
	if _, refused := srv.Conns(); refused != 1 {
		t.Fatalf("refused %d, want 1", refused)
	}
	open[1].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := wire.Dial(ctx, srv.Addr(), wire.DialOptions{})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flakyListener fails its first accepts with EMFILE, as a process out of
// file descriptors does.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// A failed accept pauses and tries again; the listener is never given up.
func TestAcceptErrorsDoNotStopTheListener(t *testing.T) {
	ln := &flakyListener{Listener: listen(t)}
	ln.fails.Store(5)
	srv := Orderly(ln, echoStatus, Options{Logger: hclog.NewNullLogger()})
	defer srv.Close()
	c, err := wire.Dial(context.Background(), srv.Addr(), wire.DialOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("no connection after accept errors: %v", err)
	}
	c.Close()
}

// A connection that declares a frame and sends no body is closed at the
// frame timeout; one that sends nothing at the idle timeout.
func TestSlowAndSilentConnectionsAreClosed(t *testing.T) {
	srv := Orderly(listen(t), echoStatus, Options{Bounds: Bounds{IdleTimeout: 300 * time.Millisecond, FrameTimeout: 300 * time.Millisecond}})
	defer srv.Close()
	for _, declare := range []bool{false, true} {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.ClientHandshake(nc, time.Second); err != nil {
			t.Fatal(err)
		}
		if declare {
			nc.Write([]byte{0, 16, 0, 0}) //nolint:errcheck // a 1 MiB frame, never sent
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		_, err = io.ReadAll(nc)
		nc.Close()
		if err != nil {
			t.Fatalf("declared a frame %v: the server did not close the connection: %v", declare, err)
		}
	}
}

// A client that pipelines big requests and never reads a reply stops
// being read once its replies fill the reply budget: the handler runs a
// bounded number of times, not once per request sent. Closing the client
// lets the server drop the connection.
func TestClientThatNeverReadsIsBounded(t *testing.T) {
	var calls atomic.Int64
	big := func(_ context.Context, _ Caller, req wire.Message) wire.Message {
		calls.Add(1)
		s := req.(wire.Scan)
		return wire.Records{Records: make([]wire.CustomerRecord, s.Limit)}
	}
	srv := Orderly(listen(t), big, Options{Bounds: Bounds{MaxReplyBytes: 1 << 20}})
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.ClientHandshake(nc, time.Second); err != nil {
		t.Fatal(err)
	}
	// 2,000 scans of 10,000 records: 500 MB of replies if all were run.
	go func() {
		for i := range 2000 {
			if _, err := nc.Write(wire.AppendFrame(nil, uint64(i+1), wire.Scan{Limit: wire.MaxScanLimit})); err != nil {
				return
			}
		}
	}()
	time.Sleep(time.Second)
	n := calls.Load()
	// 1 MiB of budget holds 4 replies of 250 kB; the socket buffers some
	// more on their way out. Far below 2,000.
	if n > 100 {
		t.Fatalf("%d scans ran for a client that read nothing: the server kept reading", n)
	}
	t.Logf("%d of 2000 scans ran for a client that reads nothing", n)
	nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if open, _ := srv.Conns(); open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection was not dropped after the client closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client over its rate gets Overloaded at once; a client under it does
// not notice.
func TestRateLimit(t *testing.T) {
	srv := Orderly(listen(t), echoStatus, Options{Bounds: Bounds{RateLimit: 20}})
	defer srv.Close()
	ctx := context.Background()
	c, err := wire.Dial(ctx, srv.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	over := 0
	for range 100 {
		if _, err := c.Status(ctx); err != nil {
			if code, _ := wire.CodeOf(err); code != wire.CodeOverloaded {
				t.Fatalf("over the rate: %v, want Overloaded", err)
			}
			over++
		}
	}
	if over < 50 {
		t.Fatalf("%d of 100 back-to-back requests refused at 20/s", over)
	}
	other, err := wire.Dial(ctx, srv.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Status(ctx); err != nil {
		t.Fatalf("another client: %v", err)
	}
}
