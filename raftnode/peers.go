package raftnode

import (
	"context"
	"fmt"
	"net"
	"time"

	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// peerIdle closes a peer stream that carried nothing for this long (the
// pool dials again when it needs one).
const peerIdle = 5 * time.Minute

// servePeer serves a peer stream the Raft port accepted from sender (a
// node certificate's name; "" on a plaintext port).
func (n *Node) servePeer(sender string, c net.Conn) {
	who := serve.Caller{Role: wire.RoleNone} // --insecure: unchecked
	if n.cfg.TLS != nil {
		who = serve.Caller{Name: sender, Role: wire.RoleNode, MaxRole: pki.NodeMaxRole}
	}
	n.peerServer.ServeConn(c, who)
}

// probeAnswer is what the bootstrap probe and the vote gate learn of a
// peer.
type probeAnswer struct {
	term, lastIndex, commitIndex uint64
}

// probe asks member, whose Raft port is addr, for its term and indexes.
func (n *Node) probe(ctx context.Context, member, addr string) (probeAnswer, error) {
	c, err := n.peers.Get(ctx, member, addr)
	if err != nil {
		return probeAnswer{}, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return probeAnswer{}, fmt.Errorf("probe %s: %w", addr, err)
	}
	return probeAnswer{term: st.Term, lastIndex: st.LastIndex, commitIndex: st.CommitIndex}, nil
}

// leaderPeer is the stream to the leader r's replica follows.
func (n *Node) leaderPeer(ctx context.Context, r *replica) (*wire.Conn, string, error) {
	addr, id := r.raft().LeaderWithID()
	if addr == "" {
		return nil, "", refuse(ErrUnavailable, "no leader known of group %d", r.gid)
	}
	c, err := n.peers.Get(ctx, string(id), string(addr))
	if err != nil {
		return nil, string(id), refuse(ErrUnavailable, "reach leader %s: %v", id, err)
	}
	return c, string(id), nil
}

// askLeaderReadIndex is a group's way to its leader's read index
// (group.Config.AskLeader): a ReadIndex request (the meta group's, as
// nodes of a single-group release ask it) or ShardReadIndex on the peer
// stream to the leader of r's shard.
func (n *Node) askLeaderReadIndex(ctx context.Context, r *replica) (uint64, error) {
	c, id, err := n.leaderPeer(ctx, r)
	if err != nil {
		return 0, err
	}
	var idx uint64
	if r.meta {
		idx, err = c.ReadIndex(ctx)
	} else {
		var reply wire.ReadIndexReply
		reply, err = wire.CallAs[wire.ReadIndexReply](ctx, c, wire.ShardReadIndex{Shard: r.shard}, 0)
		idx = reply.Index
	}
	if err != nil {
		if _, ok := wire.CodeOf(err); ok {
			return 0, err
		}
		return 0, refuse(ErrUnavailable, "read index from leader %s: %v", id, err)
	}
	return idx, nil
}
