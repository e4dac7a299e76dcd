package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// CommandType is the first byte of every Raft command orderly writes.
type CommandType uint8

// Command types. Values live in the Raft log forever: never renumber.
const (
	CmdPlaceOrder  CommandType = 1
	CmdSetMember   CommandType = 2
	CmdPlaceOrders CommandType = 3 // several PlaceOrder in one entry
	CmdSetLimits   CommandType = 4 // version 2: the session cap (sessions.go)
	CmdSetShard    CommandType = 5 // version 3: one shard of the shard map (shardmap.go)
)

// MaxOrdersPerEntry bounds a CmdPlaceOrders entry.
const MaxOrdersPerEntry = 1024

// Laptop types carried in PlaceOrder (the same values as the wire protocol).
const (
	LaptopRegular uint8 = 0
	LaptopCustom  uint8 = 1
)

// PlaceOrder is one order, regular or custom (DESIGN §3). EngineerID and
// ExpertID are decided by the leader that took the order; LeaderTime is the
// leader's clock when it proposed the command, the only time Apply sees.
type PlaceOrder struct {
	CustomerID  int32
	OrderNumber int32
	LaptopType  uint8
	EngineerID  int32
	ExpertID    int32
	ClientID    uint64
	Seq         uint64
	LeaderTime  int64 // unix nanoseconds
}

const placeOrderLen = 1 + 4 + 4 + 1 + 4 + 4 + 8 + 8 + 8

// AppendPlaceOrder appends the encoded command to dst.
func AppendPlaceOrder(dst []byte, c PlaceOrder) []byte {
	dst = append(dst, byte(CmdPlaceOrder))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.CustomerID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.OrderNumber))
	dst = append(dst, c.LaptopType)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.EngineerID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.ExpertID))
	dst = binary.BigEndian.AppendUint64(dst, c.ClientID)
	dst = binary.BigEndian.AppendUint64(dst, c.Seq)
	return binary.BigEndian.AppendUint64(dst, uint64(c.LeaderTime))
}

// AppendPlaceOrders appends one entry carrying every order of cs: the
// leader packs orders that waited together, so that Raft stores and
// replicates one entry instead of len(cs). Each order is encoded as by
// AppendPlaceOrder. No two may be for the same customer: an order's index
// then still names exactly one state of its customer's record.
func AppendPlaceOrders(dst []byte, cs []PlaceOrder) []byte {
	dst = append(dst, byte(CmdPlaceOrders))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cs)))
	for _, c := range cs {
		dst = AppendPlaceOrder(dst, c)
	}
	return dst
}

func decodePlaceOrders(b []byte) ([]PlaceOrder, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: PlaceOrders of %d bytes", ErrBadCommand, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	b = b[3:]
	if n == 0 || n > MaxOrdersPerEntry || len(b) != n*placeOrderLen {
		return nil, fmt.Errorf("%w: PlaceOrders of %d orders in %d bytes", ErrBadCommand, n, len(b))
	}
	out := make([]PlaceOrder, n)
	for i := range out {
		c, err := decodePlaceOrder(b[i*placeOrderLen : (i+1)*placeOrderLen])
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// ErrBadCommand means a log entry is not a command this version knows.
// Only a leader bug or a newer version writes one: the node must stop.
var ErrBadCommand = errors.New("fsm: undecodable command")

func decodePlaceOrder(b []byte) (PlaceOrder, error) {
	if len(b) != placeOrderLen {
		return PlaceOrder{}, fmt.Errorf("%w: PlaceOrder of %d bytes, want %d", ErrBadCommand, len(b), placeOrderLen)
	}
	be := binary.BigEndian
	return PlaceOrder{
		CustomerID:  int32(be.Uint32(b[1:])),
		OrderNumber: int32(be.Uint32(b[5:])),
		LaptopType:  b[9],
		EngineerID:  int32(be.Uint32(b[10:])),
		ExpertID:    int32(be.Uint32(b[14:])),
		ClientID:    be.Uint64(b[18:]),
		Seq:         be.Uint64(b[26:]),
		LeaderTime:  int64(be.Uint64(b[34:])),
	}, nil
}

// SetMember records a node's client address, so that every node and client
// can find the leader's client port from its Raft id, and the command
// version its build understands, so that the leader proposes only commands
// every member can apply (rolling upgrades).
type SetMember struct {
	ID         string
	ClientAddr string
	// Version is the member's command version (its build's Version); 0 in
	// entries written before versions were published, which means 1.
	Version uint16
}

// AppendSetMember appends the encoded command to dst.
func AppendSetMember(dst []byte, c SetMember) []byte {
	dst = append(dst, byte(CmdSetMember))
	dst = appendString(dst, c.ID)
	dst = appendString(dst, c.ClientAddr)
	return binary.BigEndian.AppendUint16(dst, c.Version)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func decodeSetMember(b []byte) (SetMember, error) {
	b = b[1:]
	id, b, ok1 := cutString(b)
	addr, b, ok2 := cutString(b)
	if !ok1 || !ok2 || (len(b) != 0 && len(b) != 2) {
		return SetMember{}, fmt.Errorf("%w: malformed SetMember", ErrBadCommand)
	}
	c := SetMember{ID: id, ClientAddr: addr}
	if len(b) == 2 { // entries before versions end after the address
		c.Version = binary.BigEndian.Uint16(b)
	}
	return c, nil
}

func cutString(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

// SetLimits sets the cluster's bounds on the state machine; the leader
// proposes it from its --max-sessions (raftnode). Version 2.
type SetLimits struct {
	MaxSessions uint32 // 0: no cap
	// EvictIdle is how long, in leader time, a session must have been
	// idle before the cap may evict it (DefaultEvictIdle).
	EvictIdle time.Duration
}

// AppendSetLimits encodes a SetLimits command.
func AppendSetLimits(dst []byte, c SetLimits) []byte {
	dst = append(dst, byte(CmdSetLimits))
	dst = binary.BigEndian.AppendUint32(dst, c.MaxSessions)
	return binary.BigEndian.AppendUint64(dst, uint64(c.EvictIdle))
}

func decodeSetLimits(b []byte) (SetLimits, error) {
	if len(b) != 13 || int64(binary.BigEndian.Uint64(b[5:])) < 0 {
		return SetLimits{}, fmt.Errorf("%w: malformed SetLimits", ErrBadCommand)
	}
	return SetLimits{MaxSessions: binary.BigEndian.Uint32(b[1:]), EvictIdle: time.Duration(binary.BigEndian.Uint64(b[5:]))}, nil
}
