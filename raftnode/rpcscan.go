package raftnode

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Raft's RPC type bytes (hashicorp/raft net_transport.go): each request on
// a Raft stream is one of these bytes, then the request in msgpack, then,
// for InstallSnapshot, Size bytes of snapshot.
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// rpcPolicy decides on each Raft request a node receives.
type rpcPolicy struct {
	// sender is the node id of the peer's certificate; empty (plaintext,
	// --insecure) checks nothing.
	sender string
	// refuseVotes reports whether votes are held (votegate.go).
	refuseVotes func() bool
}

// requestKey is a request key the walk looks for.
type requestKey uint8

const (
	keyOther requestKey = iota
	keyID
	keySize
)

// errRPCRefused ends a Raft stream whose sender broke the policy.
var errRPCRefused = errors.New("raft request refused")

// scannedConn is an accepted Raft stream, read through a walk of the
// msgpack structure of each request as its bytes pass to Raft. It reads
// the request's type and its header's sender id and refuses (the read
// fails; Raft drops the stream without acting on a half-read request) a
// request whose sender is not the certificate's node, and votes while the
// vote gate holds them. It decodes nothing else and copies no payload:
// strings and binaries pass through as they are.
type scannedConn struct {
	net.Conn
	br     *bufio.Reader
	policy rpcPolicy

	pending []byte // bytes walked over, not yet handed to Raft
	raw     int64  // bytes to pass without walking (a string's body, a snapshot)
	then    int64  // bytes to pass without walking after raw (a snapshot after its request)

	inMsg   bool
	msgType uint8
	stack   []level // open maps and arrays of the current request
	sawID   bool
	size    int64 // InstallSnapshot's Size

	// key says which of the request's keys the walk is at: the sender id
	// or the snapshot size. Its header is embedded, so msgpack writes the
	// header's fields (ID, Addr, ProtocolVersion) among the request's own.
	key requestKey
}

type level struct {
	left  uint64 // items to read (a map's entries count twice)
	isMap bool
}

const maxDepth = 32

func newScannedConn(c net.Conn, p rpcPolicy) *scannedConn {
	return &scannedConn{Conn: c, br: bufio.NewReaderSize(c, 64<<10), policy: p, stack: make([]level, 0, 8)}
}

// Read hands Raft the bytes walked so far; it blocks only when it has
// none.
func (s *scannedConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.pending) > 0 {
			k := copy(p[n:], s.pending)
			s.pending = s.pending[k:]
			n += k
			continue
		}
		if n > 0 && s.br.Buffered() == 0 {
			break
		}
		if s.raw > 0 {
			k := int64(len(p) - n)
			if b := int64(s.br.Buffered()); b > 0 && b < k {
				k = b
			}
			k = min(k, s.raw)
			m, err := s.br.Read(p[n : n+int(k)])
			n += m
			s.raw -= int64(m)
			if err != nil {
				return n, err
			}
			if s.raw == 0 {
				s.raw, s.then = s.then, 0
			}
			continue
		}
		if err := s.step(); err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

// step walks one token: a request's type byte or one msgpack item's head.
func (s *scannedConn) step() error {
	if !s.inMsg {
		t, err := s.br.ReadByte()
		if err != nil {
			return err
		}
		if t > rpcRequestPreVote {
			return fmt.Errorf("%w: unknown Raft RPC type %d", errRPCRefused, t)
		}
		if (t == rpcRequestVote || t == rpcRequestPreVote) && s.policy.refuseVotes != nil && s.policy.refuseVotes() {
			return fmt.Errorf("%w: votes are held until this node has caught up", errRPCRefused)
		}
		s.inMsg, s.msgType, s.sawID, s.size = true, t, false, 0
		s.stack = append(s.stack[:0], level{left: 1})
		s.pending = append(s.pending[:0], t)
		return nil
	}
	head, err := s.br.Peek(1)
	if err != nil {
		return err
	}
	b := head[0]
	hlen, body, count, isMap, err := itemHead(s.br, b)
	if err != nil {
		return err
	}
	h, err := s.br.Peek(hlen)
	if err != nil {
		return err
	}
	depth := len(s.stack) // of this item: 1 is the request itself
	top := &s.stack[len(s.stack)-1]
	isKey := top.isMap && top.left%2 == 0
	top.left--

	// What this item means to the policy, read before it is passed on.
	if err := s.inspect(h, depth, isKey, body); err != nil {
		return err
	}
	if h, err = s.br.Peek(hlen); err != nil { // inspect's Peek may have moved the buffer
		return err
	}
	s.pending = append(s.pending[:0], h...)
	if _, err := s.br.Discard(hlen); err != nil {
		return err
	}
	s.raw = body
	if isMap || (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd {
		if len(s.stack) >= maxDepth {
			return fmt.Errorf("%w: request nested deeper than %d", errRPCRefused, maxDepth)
		}
		s.stack = append(s.stack, level{left: count, isMap: isMap})
	}
	for len(s.stack) > 0 && s.stack[len(s.stack)-1].left == 0 {
		s.stack = s.stack[:len(s.stack)-1]
	}
	if len(s.stack) == 0 {
		return s.endRequest()
	}
	return nil
}

// inspect looks at one item before it is passed on: the request's keys,
// the sender id (the header's ID), InstallSnapshot's Size.
func (s *scannedConn) inspect(h []byte, depth int, isKey bool, body int64) error {
	if depth != 2 {
		return nil
	}
	if isKey {
		s.key = keyOther
		if (body == 2 || body == 4) && isStr(h[0]) {
			k, err := s.br.Peek(len(h) + int(body))
			if err != nil {
				return err
			}
			// Compared as bytes: no string per key on the Raft hot path.
			switch k = k[len(h):]; {
			case string(k) == "ID":
				s.key = keyID
			case string(k) == "Size":
				s.key = keySize
			}
		}
		return nil
	}
	switch {
	case s.key == keyID:
		if body > 256 || !(isStr(h[0]) || isBin(h[0])) {
			return fmt.Errorf("%w: malformed sender id", errRPCRefused)
		}
		id, err := s.br.Peek(len(h) + int(body))
		if err != nil {
			return err
		}
		if s.policy.sender != "" && string(id[len(h):]) != s.policy.sender {
			return fmt.Errorf("%w: node %q sent a request as %q", errRPCRefused, s.policy.sender, id[len(h):])
		}
		s.sawID = true
	case s.key == keySize && s.msgType == rpcInstallSnapshot:
		v, ok := uintValue(h)
		if !ok {
			return fmt.Errorf("%w: malformed snapshot size", errRPCRefused)
		}
		s.size = int64(v)
	}
	return nil
}

// endRequest runs when a request's last item has been walked, before its
// last bytes reach Raft.
func (s *scannedConn) endRequest() error {
	s.inMsg = false
	s.key = keyOther
	if s.policy.sender != "" && !s.sawID {
		return fmt.Errorf("%w: request names no sender", errRPCRefused)
	}
	if s.msgType == rpcInstallSnapshot {
		s.then = s.size // the snapshot follows the request
		if s.raw == 0 {
			s.raw, s.then = s.then, 0
		}
	}
	return nil
}

// itemHead reads the head of the msgpack item starting with byte b: its
// length, the length of the body that follows it (strings, binaries,
// extensions), and for a map or an array the number of items in it.
func itemHead(br *bufio.Reader, b byte) (hlen int, body int64, count uint64, isMap bool, err error) {
	lenAt := func(n int) (uint64, error) {
		h, err := br.Peek(1 + n)
		if err != nil {
			return 0, err
		}
		switch n {
		case 1:
			return uint64(h[1]), nil
		case 2:
			return uint64(binary.BigEndian.Uint16(h[1:])), nil
		}
		return uint64(binary.BigEndian.Uint32(h[1:])), nil
	}
	var v uint64
	switch {
	case b <= 0x7f, b >= 0xe0, b == 0xc0, b == 0xc2, b == 0xc3:
		return 1, 0, 0, false, nil
	case b >= 0x80 && b <= 0x8f:
		return 1, 0, 2 * uint64(b&0x0f), true, nil
	case b >= 0x90 && b <= 0x9f:
		return 1, 0, uint64(b & 0x0f), false, nil
	case b >= 0xa0 && b <= 0xbf:
		return 1, int64(b & 0x1f), 0, false, nil
	case b == 0xc4 || b == 0xd9: // bin8, str8
		v, err = lenAt(1)
		return 2, int64(v), 0, false, err
	case b == 0xc5 || b == 0xda:
		v, err = lenAt(2)
		return 3, int64(v), 0, false, err
	case b == 0xc6 || b == 0xdb:
		v, err = lenAt(4)
		return 5, int64(v), 0, false, err
	case b == 0xc7: // ext8: len, type, data
		v, err = lenAt(1)
		return 3, int64(v), 0, false, err
	case b == 0xc8:
		v, err = lenAt(2)
		return 4, int64(v), 0, false, err
	case b == 0xc9:
		v, err = lenAt(4)
		return 6, int64(v), 0, false, err
	case b == 0xca:
		return 5, 0, 0, false, nil
	case b == 0xcb:
		return 9, 0, 0, false, nil
	case b == 0xcc || b == 0xd0:
		return 2, 0, 0, false, nil
	case b == 0xcd || b == 0xd1:
		return 3, 0, 0, false, nil
	case b == 0xce || b == 0xd2:
		return 5, 0, 0, false, nil
	case b == 0xcf || b == 0xd3:
		return 9, 0, 0, false, nil
	case b >= 0xd4 && b <= 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
		return 2, int64(1) << (b - 0xd4), 0, false, nil
	case b == 0xdc:
		v, err = lenAt(2)
		return 3, 0, v, false, err
	case b == 0xdd:
		v, err = lenAt(4)
		return 5, 0, v, false, err
	case b == 0xde:
		v, err = lenAt(2)
		return 3, 0, 2 * v, true, err
	case b == 0xdf:
		v, err = lenAt(4)
		return 5, 0, 2 * v, true, err
	}
	return 0, 0, 0, false, fmt.Errorf("%w: byte 0x%02x starts no msgpack item", errRPCRefused, b)
}

func isStr(b byte) bool { return (b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb) }
func isBin(b byte) bool { return b >= 0xc4 && b <= 0xc6 }

// uintValue reads a non-negative integer item.
func uintValue(h []byte) (uint64, bool) {
	b := h[0]
	switch {
	case b <= 0x7f:
		return uint64(b), true
	case b == 0xcc:
		return uint64(h[1]), true
	case b == 0xcd:
		return uint64(binary.BigEndian.Uint16(h[1:])), true
	case b == 0xce:
		return uint64(binary.BigEndian.Uint32(h[1:])), true
	case b == 0xcf:
		return binary.BigEndian.Uint64(h[1:]), true
	case b == 0xd0, b == 0xd1, b == 0xd2, b == 0xd3:
		var v int64
		switch b {
		case 0xd0:
			v = int64(int8(h[1]))
		case 0xd1:
			v = int64(int16(binary.BigEndian.Uint16(h[1:])))
		case 0xd2:
			v = int64(int32(binary.BigEndian.Uint32(h[1:])))
		default:
			v = int64(binary.BigEndian.Uint64(h[1:]))
		}
		return uint64(v), v >= 0
	}
	return 0, false
}
