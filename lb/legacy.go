package lb

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"orderly/internal/wait"
	"orderly/serve"
	"orderly/wire"
)

// The seed system's protocol, byte for byte (DESIGN §4): no handshake, no
// framing, big-endian int32 fields.
const (
	legacyRequestLen = 12 // customer_id, order_number, request_type
	legacyInfoLen    = 20 // customer_id, order_number, laptop_type, engineer_id, expert_id
	legacyRecordLen  = 8  // customer_id, last_order

	legacyRegular = 0
	legacyCustom  = 1
	legacyRead    = 2
)

type legacyServer struct {
	b           *Balancer
	conns       *serve.Conns
	idleTimeout time.Duration
}

func startLegacy(ln net.Listener, b *Balancer) *legacyServer {
	s := &legacyServer{b: b, idleTimeout: b.cfg.LegacyIdleTimeout}
	s.conns = serve.Start(ln, b.log.Named("legacy"), serve.Limits{MaxConns: b.cfg.MaxConns, MaxConnsPerSource: b.cfg.MaxConnsPerClient}, s.serveConn)
	return s
}

// legacySession is what the balancer keeps for one seed connection: its
// own client id and write numbering (so retries are applied once), and the
// highest index it has seen (for session reads), both per shard.
type legacySession struct {
	clientID uint64
	seq      map[uint32]uint64
	seen     map[uint32]uint64
}

// legacyClient names the seed's port in the leader connection's share, a
// client of its own whose connections together take one client's turns.
// orderctl certs issues no name with a space (a certificate from another
// CA named so would only share these turns).
const legacyClient = " seed port"

// client is the session as a client of the balancer: a writer (the seed's
// port has no identity; it listens on loopback unless said otherwise),
// whose lane is its client id.
func (sess *legacySession) client() client {
	return client{role: wire.RoleWriter, lane: laneID{client: legacyClient, conn: sess.clientID}}
}

func (s *legacyServer) serveConn(c net.Conn) {
	log := s.b.log.Named("legacy").With("remote", c.RemoteAddr().String())
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		log.Error("no client id for connection", "error", err)
		return
	}
	sess := &legacySession{clientID: binary.BigEndian.Uint64(id[:]) | 1}
	req := make([]byte, legacyRequestLen)
	idle := wire.NewIdleDeadline(c.SetReadDeadline, s.idleTimeout)
	for {
		idle.Push() // a connection idle for idleTimeout is closed
		if _, err := io.ReadFull(c, req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Warn("closing legacy connection", "error", err)
			}
			return
		}
		s.b.requests.Add(1)
		reply, err := s.answer(sess, req)
		if err != nil {
			log.Warn("legacy request failed; closing", "request", fmt.Sprintf("%x", req), "error", err)
			c.Write(reply) //nolint:errcheck // the connection closes either way
			return
		}
		if _, err := c.Write(reply); err != nil {
			log.Debug("legacy write failed", "error", err)
			return
		}
	}
}

// answer runs one request. On failure it returns the seed's failure
// answer (customer_id -1, in the size the request type expects) and why.
func (s *legacyServer) answer(sess *legacySession, req []byte) ([]byte, error) {
	be := binary.BigEndian
	customer := int32(be.Uint32(req[0:]))
	number := int32(be.Uint32(req[4:]))
	kind := int32(be.Uint32(req[8:]))
	// The balancer's own context: a request ends with its answer or its
	// retry budget, and a context of its own cost a lock on that shared
	// parent per request.
	ctx := s.b.routines.Context()
	if sess.seq == nil {
		sess.seq, sess.seen = map[uint32]uint64{}, map[uint32]uint64{}
	}
	sh, err := s.b.pool.waitShardOf(ctx, customer, s.b.cfg.RetryTimeout)
	if err != nil {
		if kind == legacyRegular || kind == legacyCustom {
			return failedInfo(), err
		}
		return failedRecord(), err
	}
	switch kind {
	case legacyRegular, legacyCustom:
		sess.seq[sh]++
		o := wire.Order{CustomerID: customer, OrderNumber: number, LaptopType: wire.LaptopType(kind),
			ClientID: sess.clientID, Seq: sess.seq[sh]}
		if err := o.Validate(); err != nil {
			return failedInfo(), err
		}
		li, err := s.b.placeOrder(ctx, sess.client(), o)
		if code, ok := wire.CodeOf(err); err != nil && (!ok || code.Unknown()) {
			li, err = s.settle(sess, o, err)
			if err != nil {
				return nil, err // no answer: the seed's -1 would say "not applied"
			}
		}
		if err != nil {
			return failedInfo(), err
		}
		sess.seen[sh] = max(sess.seen[sh], li.Index)
		return appendInt32s(nil, li.CustomerID, li.OrderNumber, int32(li.LaptopType), li.EngineerID, li.ExpertID), nil
	case legacyRead:
		g := wire.Get{CustomerID: customer, Consistency: s.b.cfg.ReadConsistency, MinIndex: sess.seen[sh]}
		if err := g.Validate(); err != nil {
			return failedRecord(), err
		}
		rec, err := s.b.get(ctx, sess.client(), g)
		if err != nil {
			return failedRecord(), err
		}
		sess.seen[sh] = max(sess.seen[sh], rec.ReadIndex)
		return appendInt32s(nil, rec.CustomerID, rec.LastOrder), nil
	}
	return failedRecord(), fmt.Errorf("unknown request type %d", kind)
}

// legacySettleFor bounds how long the balancer resends a seed order whose
// outcome is unknown: longer than a cluster's worst recovery from losing
// every node at once (12.5 s in the chaos runs, docs/chaos.md).
const legacySettleFor = time.Minute

// settle resends an order whose outcome is unknown, with its (client_id,
// seq), until an answer comes (the first one, if it had been applied, or
// its application now). The seed's client cannot do it: its protocol has
// no sequence numbers, and its only failure answer says "not applied".
// A refused resend says nothing of the attempt that was lost, so only an
// answer ends the wait; if none comes, the connection closes unanswered.
func (s *legacyServer) settle(sess *legacySession, o wire.Order, first error) (wire.LaptopInfo, error) {
	deadline := time.Now().Add(legacySettleFor)
	err := first
	for time.Now().Before(deadline) && s.b.routines.Context().Err() == nil {
		if !wait.Sleep(s.b.routines.Context(), 50*time.Millisecond) {
			break
		}
		var li wire.LaptopInfo
		if li, err = s.b.placeOrder(s.b.routines.Context(), sess.client(), o); err == nil {
			return li, nil
		}
	}
	return wire.LaptopInfo{}, fmt.Errorf("order of customer %d (seq %d): outcome still unknown after %v: %w", o.CustomerID, o.Seq, legacySettleFor, err)
}

func failedInfo() []byte   { return appendInt32s(nil, -1, -1, -1, -1, -1) }
func failedRecord() []byte { return appendInt32s(nil, -1, -1) }

func appendInt32s(b []byte, vs ...int32) []byte {
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, uint32(v))
	}
	return b
}
