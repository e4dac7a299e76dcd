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
	srv := Orderly(listen(t), echoStatus, Options{MaxConns: 2})
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
	srv := Orderly(listen(t), echoStatus, Options{IdleTimeout: 300 * time.Millisecond, FrameTimeout: 300 * time.Millisecond})
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
