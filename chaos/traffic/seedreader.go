package traffic

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"orderly/chaos/model"
	"orderly/internal/wait"
	"orderly/wire"
)

// seedReader reads the normal clients' customers through the balancer's
// seed-protocol port, as the seed's own client does (one connection, one
// request at a time), so that port's linearizable reads are in the
// checked history too. The seed protocol answers the last order only.
func (w *Workload) seedReader(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(i)))
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			d := net.Dialer{Timeout: time.Second}
			c, err := d.DialContext(ctx, "tcp", w.legacyAddr)
			if err != nil {
				wait.Sleep(ctx, 50*time.Millisecond)
				continue
			}
			conn = c
		}
		op := model.Op{Client: i, Via: model.ViaSeed, Kind: model.OpRead, Consistency: wire.Linearizable, Customer: int32(rng.IntN(w.customers))}
		op.Call = w.Since()
		last, err := seedRead(conn, op.Customer, w.timeout)
		op.Return = w.Since()
		if err != nil {
			op.Outcome, op.Err = model.Failed, err.Error()
			conn.Close()
			conn = nil
		} else {
			op.Outcome, op.Last = model.OK, last
		}
		w.hist.add(op)
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
	}
}

// seedRead sends one read request of the seed protocol (customer_id,
// order_number, request_type 2) and returns the last order it answers.
func seedRead(conn net.Conn, customer int32, timeout time.Duration) (int32, error) {
	conn.SetDeadline(time.Now().Add(timeout)) //nolint:errcheck // a failed set shows up as an I/O error
	req := binary.BigEndian.AppendUint32(nil, uint32(customer))
	req = binary.BigEndian.AppendUint32(req, 0)
	req = binary.BigEndian.AppendUint32(req, 2)
	if _, err := conn.Write(req); err != nil {
		return 0, fmt.Errorf("seed read: %w", err)
	}
	var resp [8]byte
	if _, err := io.ReadFull(conn, resp[:]); err != nil {
		return 0, fmt.Errorf("seed read: %w", err)
	}
	if got := int32(binary.BigEndian.Uint32(resp[0:])); got != customer {
		return 0, fmt.Errorf("seed read of customer %d answered customer %d (the seed's failure answer)", customer, got)
	}
	return int32(binary.BigEndian.Uint32(resp[4:])), nil
}
