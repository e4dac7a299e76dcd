package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"orderly/wire"
)

// seedConn is one customer's connection to a balancer's seed port
// (orderlb --legacy-listen), as the seed's client opened them: one per
// customer, one 12-byte request in flight, 20- or 8-byte answers.
type seedConn struct {
	nc  net.Conn
	buf [20]byte
}

func dialSeed(ctx context.Context, addr string) (*seedConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial seed port %s: %w", addr, err)
	}
	return &seedConn{nc: nc}, nil
}

// do sends one request (an order of type typ, or a read) and reads its
// answer; customer -1 in it is the seed's failure. The seed's request
// types: 0 regular order, 1 custom, 2 read.
func (s *seedConn) do(ctx context.Context, customer, number int32, read bool, typ wire.LaptopType) error {
	kind := int32(typ)
	if read {
		kind = 2
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(seedTimeout)
	}
	s.nc.SetDeadline(dl) //nolint:errcheck // a failed deadline fails the read
	req := s.buf[:12]
	binary.BigEndian.PutUint32(req[0:], uint32(customer))
	binary.BigEndian.PutUint32(req[4:], uint32(number))
	binary.BigEndian.PutUint32(req[8:], uint32(kind))
	if _, err := s.nc.Write(req); err != nil {
		return fmt.Errorf("seed port: %w", err)
	}
	n := 20
	if read {
		n = 8
	}
	if _, err := io.ReadFull(s.nc, s.buf[:n]); err != nil {
		return fmt.Errorf("seed port: %w", err)
	}
	if got := int32(binary.BigEndian.Uint32(s.buf[0:])); got != customer {
		return fmt.Errorf("seed port answered customer %d for %d: the request failed", got, customer)
	}
	return nil
}

func (s *seedConn) close() { s.nc.Close() }

// seedTimeout bounds one seed request: the port has no error answer of
// its own beyond customer -1.
const seedTimeout = 30 * time.Second
