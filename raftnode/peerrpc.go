package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"orderly/pki"
)

// Orderly's own peer RPCs ride the Raft port (raftport.go) beside Raft's,
// so that nothing of orderly's has to forge a Raft request: one request
// per stream, a byte naming it; the answer is a status byte, a length
// byte and at most 255 bytes.
const (
	// peerProbe asks a node for its Raft term, last log index and commit
	// index: the bootstrap probe (bootstrap.go) and the vote gate's
	// question to the leader (votegate.go).
	peerProbe byte = 1
	// peerMemberAddr asks a node for the address of a member (its id
	// follows, a length byte then the id) in its latest configuration, ""
	// if it is none: a node whose configuration may be stale asks the
	// others about a sender it does not know (vouch.go).
	peerMemberAddr byte = 2
)

const (
	peerOK    byte = 0
	peerError byte = 1
)

// errPeerRPC wraps a failed peer RPC.
var errPeerRPC = errors.New("peer rpc")

// peerRPCTimeout bounds one peer RPC on the serving side.
const peerRPCTimeout = 2 * time.Second

// probeAnswer is a node's answer to peerProbe.
type probeAnswer struct {
	term, lastIndex, commitIndex uint64
}

func (a probeAnswer) encode() []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b, a.term)
	binary.BigEndian.PutUint64(b[8:], a.lastIndex)
	binary.BigEndian.PutUint64(b[16:], a.commitIndex)
	return b
}

func decodeProbeAnswer(b []byte) (probeAnswer, error) {
	if len(b) != 24 {
		return probeAnswer{}, fmt.Errorf("%w: probe answer of %d bytes", errPeerRPC, len(b))
	}
	return probeAnswer{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:])}, nil
}

// servePeerRPC answers the one request of a peer stream.
func servePeerRPC(c net.Conn, handle func(op byte, arg []byte) ([]byte, error)) {
	c.SetDeadline(time.Now().Add(peerRPCTimeout)) //nolint:errcheck // a failed deadline fails the I/O
	var op [1]byte
	if _, err := io.ReadFull(c, op[:]); err != nil {
		return
	}
	var arg []byte
	if op[0] == peerMemberAddr { // the ops with an argument
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		arg = make([]byte, l[0])
		if _, err := io.ReadFull(c, arg); err != nil {
			return
		}
	}
	status, body := peerOK, []byte(nil)
	if b, err := handle(op[0], arg); err != nil {
		status, body = peerError, []byte(err.Error())
	} else {
		body = b
	}
	if len(body) > 255 {
		body = body[:255]
	}
	c.Write(append([]byte{status, byte(len(body))}, body...)) //nolint:errcheck // the asker sees a short answer
}

// askPeer sends one peer RPC to the node whose Raft port is addr.
func askPeer(ctx context.Context, src *pki.Source, addr string, op byte) ([]byte, error) {
	return askPeerWith(ctx, src, addr, op, nil)
}

// askPeerWith is askPeer for an op with an argument (at most 255 bytes).
func askPeerWith(ctx context.Context, src *pki.Source, addr string, op byte, arg []byte) ([]byte, error) {
	if len(arg) > 255 {
		return nil, fmt.Errorf("%w: argument of %d bytes", errPeerRPC, len(arg))
	}
	c, err := dialRaftPort(ctx, src, addr, streamPeer)
	if err != nil {
		return nil, fmt.Errorf("%w to %s: %v", errPeerRPC, addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl) //nolint:errcheck // a failed deadline fails the I/O
	}
	req := []byte{op}
	if arg != nil {
		req = append(append(req, byte(len(arg))), arg...)
	}
	if _, err := c.Write(req); err != nil {
		return nil, fmt.Errorf("%w to %s: %v", errPeerRPC, addr, err)
	}
	var head [2]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return nil, fmt.Errorf("%w to %s: %v", errPeerRPC, addr, err)
	}
	body := make([]byte, head[1])
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, fmt.Errorf("%w to %s: %v", errPeerRPC, addr, err)
	}
	if head[0] != peerOK {
		return nil, fmt.Errorf("%w to %s: %s", errPeerRPC, addr, body)
	}
	return body, nil
}

// probe asks the node at addr for its term and indexes.
func probe(ctx context.Context, src *pki.Source, addr string) (probeAnswer, error) {
	b, err := askPeer(ctx, src, addr, peerProbe)
	if err != nil {
		return probeAnswer{}, err
	}
	return decodeProbeAnswer(b)
}

// answerPeer serves this node's peer RPCs.
func (n *Node) answerPeer(op byte, arg []byte) ([]byte, error) {
	r := n.raftReady()
	if r == nil {
		return nil, fmt.Errorf("raft is starting")
	}
	switch op {
	case peerProbe:
		return probeAnswer{term: r.CurrentTerm(), lastIndex: r.LastIndex(), commitIndex: r.CommitIndex()}.encode(), nil
	case peerMemberAddr:
		f := r.GetConfiguration()
		if err := f.Error(); err != nil {
			return nil, err
		}
		for _, m := range f.Configuration().Servers {
			if string(m.ID) == string(arg) {
				return []byte(m.Address), nil
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown peer rpc %d", op)
}
