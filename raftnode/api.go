package raftnode

import (
	"context"
	"errors"

	"orderly/serve"
	"orderly/wire"
)

// ServeAPI answers a call of the HTTP API (package api) as the binary
// port would answer its request, but for one thing: an order that
// reaches a follower is forwarded to the leader, in the caller's role
// (wire.AsRole on the node's peer stream to the leader, capped at writer
// by the node certificate), so an HTTP client needs no leader tracking of its
// own. The balancer does the same for binary clients; a node forwards
// only orders, only once, and says Timeout (the outcome is unknown) if
// the leader took the order but its answer was lost.
func (n *Node) ServeAPI(ctx context.Context, from serve.Caller, req wire.Message) wire.Message {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	resp := n.handle(ctx, from, req)
	nl, ok := resp.(*wire.Error)
	if !ok || (nl.Code != wire.CodeNotLeader && nl.Code != wire.CodeWrongShard) || nl.LeaderAddr == "" || req.Type() != wire.TypeOrder {
		return resp
	}
	c, leader, err := n.shardLeaderPeer(ctx, n.ShardOf(req.(wire.Order).CustomerID))
	if err != nil { // nothing was sent: still a sure refusal
		n.log.Debug("forward order: leader unreachable", "leader", nl.LeaderAddr, "error", err)
		return nl
	}
	var fwd wire.Message = req // --insecure: no roles to carry
	if from.Role.ClientRole() {
		fwd = wire.AsRole{Role: from.Role, Msg: req}
	}
	fwd, err = c.Call(ctx, fwd)
	if err == nil {
		return fwd
	}
	var e *wire.Error
	if errors.As(err, &e) { // the leader's own answer
		return e
	}
	return wireAnswer(refuse(ErrUnknownOutcome, "order forwarded to the leader %s, its answer lost: %v", leader, err))
}

// Watch serves a change feed for the HTTP API.
func (n *Node) Watch(ctx context.Context, from serve.Caller, w wire.Watch, send func(context.Context, wire.Message) error) wire.Message {
	return n.watch(ctx, from, w, send)
}
