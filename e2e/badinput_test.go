package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/internal/freeport"
	"orderly/wire"
)

// plainDial opens a plaintext TCP connection (the seed's port).
func plainDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

// rawDial opens a mutual TLS connection as the admin and hands back the
// stream under the orderly protocol, for bytes no client would send.
func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc := plainDial(t, addr)
	host, _, _ := net.SplitHostPort(addr)
	tc := tls.Client(nc, certs.Admin()(host))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

func helloOK(t *testing.T, nc net.Conn) {
	t.Helper()
	if err := wire.ClientHandshake(nc, time.Second); err != nil {
		t.Fatal(err)
	}
}

// readError reads one frame and checks it is an Error with the given code.
func readError(t *testing.T, fr *wire.FrameReader, id uint64, code wire.Code) {
	t.Helper()
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("want an Error frame: %v", err)
	}
	if f.Type != wire.TypeError || f.ID != id {
		t.Fatalf("got %s for request %d, want Error for %d", f.Type, f.ID, id)
	}
	e, err := wire.DecodeError(f.Payload)
	if err != nil || e.Code != code {
		t.Fatalf("got %v (%v), want code %s", e, err, code)
	}
}

func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	if _, err := io.ReadAll(nc); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("want the server to close the connection, got %v", err)
	}
}

// TestBadInputOnClientPort: each kind of bad input gets a clear error or a
// closed connection, and the node keeps serving a well-behaved client.
func TestBadInputOnClientPort(t *testing.T) {
	c := startCluster(t)
	leader := mustLeader(t, c)
	checkBadInput(t, leader.ClientAddr)
}

// checkBadInput sends every kind of bad input to an orderly-protocol port
// (a node's or a balancer's) and checks that a well-behaved client of the
// same port is served throughout and state is unchanged.
func checkBadInput(t *testing.T, addr string) {
	good := mustClient(t, addr)
	order := func(k int32) {
		t.Helper()
		if _, err := good.Order(context.Background(), 1, k, wire.Regular); err != nil {
			t.Fatalf("well-behaved client after bad input: %v", err)
		}
	}
	order(1)

	t.Run("garbage instead of a handshake", func(t *testing.T) {
		nc := rawDial(t, addr)
		nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		ans := make([]byte, 7)
		if _, err := io.ReadFull(nc, ans); err != nil || string(ans[:4]) != wire.Magic || ans[6] != 1 {
			t.Fatalf("answer %q (%v), want magic and status 1 (bad magic)", ans, err)
		}
		expectClosed(t, nc)
	})
	t.Run("wrong protocol version", func(t *testing.T) {
		nc := rawDial(t, addr)
		nc.Write([]byte{'O', 'R', 'D', 'L', 0, 99})
		ans := make([]byte, 7)
		if _, err := io.ReadFull(nc, ans); err != nil || ans[6] != 2 {
			t.Fatalf("answer %q (%v), want status 2 (bad version)", ans, err)
		}
		expectClosed(t, nc)
	})
	t.Run("4 GiB frame length", func(t *testing.T) {
		nc := rawDial(t, addr)
		helloOK(t, nc)
		nc.Write([]byte{0xff, 0xff, 0xff, 0xff, byte(wire.TypeOrder)})
		readError(t, wire.NewFrameReader(nc, 0), 0, wire.CodeBadRequest)
		expectClosed(t, nc)
	})
	t.Run("unknown message type", func(t *testing.T) {
		nc := rawDial(t, addr)
		helloOK(t, nc)
		frame := binary.BigEndian.AppendUint32(nil, 9)
		frame = append(frame, 200)
		frame = binary.BigEndian.AppendUint64(frame, 77)
		nc.Write(frame)
		fr := wire.NewFrameReader(nc, 0)
		readError(t, fr, 77, wire.CodeBadRequest)
		// The frame boundary was intact, so the connection stays usable.
		nc.Write(wire.AppendFrame(nil, 78, wire.Status{}))
		if f, err := fr.ReadFrame(); err != nil || f.Type != wire.TypeStatusInfo || f.ID != 78 {
			t.Fatalf("status after an unknown type: %v %v", f.Type, err)
		}
	})
	t.Run("negative customer id", func(t *testing.T) {
		nc := rawDial(t, addr)
		helloOK(t, nc)
		nc.Write(wire.AppendFrame(nil, 5, wire.Order{CustomerID: -7, OrderNumber: 1, ClientID: 1, Seq: 1}))
		nc.Write(wire.AppendFrame(nil, 6, wire.Get{CustomerID: -7}))
		fr := wire.NewFrameReader(nc, 0)
		got := map[uint64]bool{}
		for i := 0; i < 2; i++ {
			f, err := fr.ReadFrame()
			if err != nil || f.Type != wire.TypeError {
				t.Fatalf("want an Error, got %v %v", f.Type, err)
			}
			e, _ := wire.DecodeError(f.Payload)
			if e.Code != wire.CodeBadRequest || !strings.Contains(e.Message, "negative") {
				t.Fatalf("got %v, want BadRequest about the negative id", e)
			}
			got[f.ID] = true
		}
		if !got[5] || !got[6] {
			t.Fatalf("answers for %v, want 5 and 6", got)
		}
	})
	t.Run("truncated payload", func(t *testing.T) {
		nc := rawDial(t, addr)
		helloOK(t, nc)
		frame := wire.AppendFrame(nil, 9, wire.Order{CustomerID: 1, ClientID: 1, Seq: 1})
		frame = frame[:len(frame)-3]
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		nc.Write(frame)
		readError(t, wire.NewFrameReader(nc, 0), 9, wire.CodeBadRequest)
	})
	t.Run("silent client", func(t *testing.T) {
		nc := rawDial(t, addr) // connects and never says hello
		_ = nc
		order(2)
	})
	order(3)
	if r := mustGet(t, good, 1, wire.Linearizable); r.OrderCount != 3 {
		t.Fatalf("customer 1 has %d orders, want 3: bad input changed state", r.OrderCount)
	}
}

// TestForeignDataDirRefused: a node must refuse a data dir that belongs to
// another node id or to another cluster, with a message that says so.
func TestForeignDataDirRefused(t *testing.T) {
	c := startCluster(t)
	n1 := c.Nodes[0]
	if err := n1.Terminate(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	orderd := filepath.Join(bin, "orderd")
	raftAddr, _ := freeport.Addr("127.0.0.1")
	clientAddr, _ := freeport.Addr("127.0.0.1")
	cases := []struct {
		name, id, peers, want string
	}{
		{"another node id", "intruder", "intruder=" + raftAddr, `is node "n1"'s, not "intruder"`},
		{"another cluster", "n1", "n1=" + raftAddr + ",x=127.0.0.1:1", "is of the cluster bootstrapped from"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		cmd := exec.Command(orderd, "--id", tc.id, "--data-dir", n1.DataDir, "--raft-addr", raftAddr,
			"--client-addr", clientAddr, "--peers", tc.peers, "--insecure")
		cmd.Stdout, cmd.Stderr = &out, &out
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(out.String(), tc.want) {
				t.Errorf("%s: exit %v, output %q; want a refusal containing %q", tc.name, err, out.String(), tc.want)
			}
		case <-ctx.Done():
			cmd.Process.Kill()
			<-done
			t.Errorf("%s: orderd started on a foreign data dir", tc.name)
		}
		cancel()
	}
	if _, err := os.Stat(filepath.Join(n1.DataDir, "wal")); err != nil {
		t.Fatal("data dir damaged:", err)
	}
}
