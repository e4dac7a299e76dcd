package raftnode

import (
	"context"
	"fmt"
	"net"
	"sync"

	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// Nodes call each other in one way: the orderly protocol on a peer stream
// of the other node's Raft port (raftport.go), where only node
// certificates are let in. A node keeps one long-lived, pipelined stream
// per peer (peerPool) for all of it: the bootstrap probe and the vote
// gate's question (Status), vouching for a sender (Members), a follower's
// ReadIndex, Publish, ReportAlarms, the HTTP API's orders forwarded to
// the leader (AsRole), the operator's status of every member. Peers are
// named by their Raft address, which the Raft configuration (or --peers)
// gives before anything is published. The same handler as the client
// port's answers them (handlePeer). The client port still answers a node
// certificate's ReadIndex, Publish and ReportAlarms, which nodes of the
// release before this one send there during a rolling upgrade; it takes
// no forwarded order from a node.
type peerPool struct {
	tls      *pki.Source // nil: plaintext (--insecure)
	maxFrame uint32

	mu     sync.Mutex
	conns  map[string]*wire.Conn
	closed bool
}

func newPeerPool(src *pki.Source, maxFrame uint32) *peerPool {
	return &peerPool{tls: src, maxFrame: maxFrame, conns: make(map[string]*wire.Conn)}
}

// get is the stream to the node whose Raft port is addr; a broken one is
// dialed again.
func (p *peerPool) get(ctx context.Context, addr string) (*wire.Conn, error) {
	p.mu.Lock()
	if c := p.conns[addr]; c != nil && c.Err() == nil {
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	// Dial outside the lock: a dead peer must not block calls to others.
	nc, err := dialRaftPort(ctx, p.tls, addr, streamPeer)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	c, err := wire.Open(nc, wire.DialOptions{MaxFrame: p.maxFrame})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, wire.Errorf(wire.CodeUnavailable, "node shutting down")
	}
	if old := p.conns[addr]; old != nil {
		if old.Err() == nil { // another caller dialed first: use theirs
			c.Close()
			return old, nil
		}
		old.Close()
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peerPool) close() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// servePeer serves a peer stream the Raft port accepted from sender (a
// node certificate's name; "" on a plaintext port).
func (n *Node) servePeer(sender string, c net.Conn) {
	who := serve.Caller{Role: wire.RoleNone} // --insecure: unchecked
	if n.cfg.TLS != nil {
		who = serve.Caller{Name: sender, Role: wire.RoleNode, MaxRole: pki.NodeMaxRole}
	}
	n.peerServer.ServeConn(c, who)
}

// handlePeer answers a peer's request. A node that is not (or not yet) a
// member may ask only what it needs to join: Status (the bootstrap probe)
// and Members (vouching); the rest is for members.
func (n *Node) handlePeer(ctx context.Context, from serve.Caller, req wire.Message) wire.Message {
	select {
	case <-n.raftStarted:
	default:
		return wire.Errorf(wire.CodeUnavailable, "node %s: raft is starting", n.cfg.ID)
	}
	switch req.Type() {
	case wire.TypeStatus, wire.TypeMembers:
	default:
		if from.Role == wire.RoleNode && !n.isMember(from.Name) {
			return wire.Errorf(wire.CodePermissionDenied, "node %q is not a member: it may ask for status and members only", from.Name)
		}
	}
	return n.handle(ctx, from, req)
}

// probeAnswer is what the bootstrap probe and the vote gate learn of a
// peer.
type probeAnswer struct {
	term, lastIndex, commitIndex uint64
}

// probe asks the node whose Raft port is addr for its term and indexes.
func (n *Node) probe(ctx context.Context, addr string) (probeAnswer, error) {
	c, err := n.peers.get(ctx, addr)
	if err != nil {
		return probeAnswer{}, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return probeAnswer{}, fmt.Errorf("probe %s: %w", addr, err)
	}
	return probeAnswer{term: st.Term, lastIndex: st.LastIndex, commitIndex: st.CommitIndex}, nil
}

// leaderPeer is the stream to the leader this node follows.
func (n *Node) leaderPeer(ctx context.Context) (*wire.Conn, string, error) {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return nil, "", wire.Errorf(wire.CodeUnavailable, "no leader known")
	}
	c, err := n.peers.get(ctx, string(addr))
	if err != nil {
		return nil, string(id), wire.Errorf(wire.CodeUnavailable, "reach leader %s: %v", id, err)
	}
	return c, string(id), nil
}
