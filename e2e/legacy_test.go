package e2e

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"orderly/wire"
)

// legacyConn is the seed's client protocol, written out by hand: 12-byte
// requests, 20-byte LaptopInfo and 8-byte CustomerRecord answers.
type legacyConn struct {
	t  *testing.T
	nc net.Conn
}

func legacyDial(t *testing.T, addr string) *legacyConn {
	return &legacyConn{t: t, nc: plainDial(t, addr)}
}

func (l *legacyConn) send(vs ...int32) {
	l.t.Helper()
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, uint32(v))
	}
	if _, err := l.nc.Write(b); err != nil {
		l.t.Fatalf("legacy write: %v", err)
	}
}

func (l *legacyConn) recv(n int) []int32 {
	l.t.Helper()
	b := make([]byte, 4*n)
	if _, err := io.ReadFull(l.nc, b); err != nil {
		l.t.Fatalf("legacy read of %d bytes: %v", len(b), err)
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.BigEndian.Uint32(b[4*i:]))
	}
	return out
}

// order sends one order and returns the LaptopInfo fields: customer,
// number, type, engineer, expert.
func (l *legacyConn) order(customer, number, typ int32) []int32 {
	l.send(customer, number, typ)
	return l.recv(5)
}

// read returns customer and last order.
func (l *legacyConn) read(customer int32) []int32 {
	l.send(customer, -1, 2)
	return l.recv(2)
}

// TestLegacyProtocol: a client speaking the seed's protocol orders and
// reads through --legacy-listen, and the answers agree with the orderly
// port. Bad requests get the seed's failure answer and a closed
// connection, and never stop the balancer serving others.
func TestLegacyProtocol(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	l := legacyDial(t, b.LegacyAddr)

	if got := l.read(5); got[0] != 5 || got[1] != -1 {
		t.Fatalf("record of a customer with no orders: %v, want [5 -1]", got)
	}
	li := l.order(5, 1, 0)
	if li[0] != 5 || li[1] != 1 || li[2] != 0 || li[3] <= 0 || li[4] != -1 {
		t.Fatalf("regular order answered %v, want [5 1 0 engineer>0 -1]", li)
	}
	li = l.order(5, 2, 1)
	if li[0] != 5 || li[1] != 2 || li[2] != 1 || li[4] < 0 {
		t.Fatalf("custom order answered %v, want [5 2 1 engineer expert>=0]", li)
	}
	if got := l.read(5); got[0] != 5 || got[1] != 2 {
		t.Fatalf("record after two orders: %v, want [5 2]", got)
	}
	// The orderly port agrees, and the two orders were applied once each.
	r := mustGet(t, mustClient(t, b.Addr), 5, wire.Linearizable)
	if r.LastOrder != 2 || r.OrderCount != 2 || r.LastLaptopType != int8(wire.Custom) {
		t.Fatalf("orderly port says %+v, want last order 2 of 2, custom", r.CustomerRecord)
	}

	bad := []struct {
		name  string
		req   []int32
		reply int // answer size in int32s
	}{
		{"unknown request type", []int32{5, 3, 9}, 2},
		{"negative customer id on an order", []int32{-4, 1, 0}, 5},
		{"negative order number", []int32{4, -1, 1}, 5},
		{"negative customer id on a read", []int32{-4, 0, 2}, 2},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			bl := legacyDial(t, b.LegacyAddr)
			bl.send(tc.req...)
			for i, v := range bl.recv(tc.reply) {
				if v != -1 {
					t.Fatalf("field %d of the answer is %d, want the failure answer (-1)", i, v)
				}
			}
			expectClosed(t, bl.nc)
		})
	}
	t.Run("garbage", func(t *testing.T) {
		bl := legacyDial(t, b.LegacyAddr)
		bl.nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		if got := bl.recv(2); got[0] != -1 {
			t.Fatalf("answer to garbage %v, want the failure answer", got)
		}
		expectClosed(t, bl.nc)
	})
	t.Run("short request", func(t *testing.T) {
		bl := legacyDial(t, b.LegacyAddr)
		bl.nc.Write([]byte{0, 0, 0, 5, 0})
		bl.nc.(*net.TCPConn).CloseWrite()
		expectClosed(t, bl.nc)
	})
	t.Run("silent client", func(t *testing.T) {
		silent := legacyDial(t, b.LegacyAddr)
		_ = silent
		other := legacyDial(t, b.LegacyAddr)
		other.nc.SetDeadline(time.Now().Add(5 * time.Second))
		if got := other.order(6, 1, 0); got[0] != 6 {
			t.Fatalf("order next to a silent client: %v", got)
		}
	})
	// The first connection was never disturbed.
	if got := l.order(5, 3, 0); got[0] != 5 || got[1] != 3 {
		t.Fatalf("order after the bad input: %v", got)
	}
	if r := mustGet(t, mustClient(t, b.Addr), 5, wire.Linearizable); r.OrderCount != 3 {
		t.Fatalf("customer 5 has %d orders, want 3: bad input changed state", r.OrderCount)
	}
}
