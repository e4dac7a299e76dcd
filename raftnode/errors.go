package raftnode

import (
	"errors"
	"fmt"

	"orderly/group"
	"orderly/wire"
)

// The node's errors: what went wrong, in the node's terms. Handlers
// return them (through refuse, with the context a client needs to read);
// the one place that answers a caller, Node.handle, turns them into the
// protocol's codes (wireAnswer). Each but ErrUnknownOutcome and
// ErrInternal is a sure refusal: nothing was applied. The group's own
// errors (group.ErrBusy, ErrNotProposed, ErrUnavailable,
// ErrUnknownOutcome) are the node's too.
var (
	// ErrInvalid: the request is malformed, names what does not exist, or
	// asks what cannot be done; sending it again changes nothing.
	ErrInvalid = errors.New("invalid request")
	// ErrDenied: the caller may not ask this (a node certificate that is
	// not a member, or speaks for another).
	ErrDenied = errors.New("permission denied")
	// ErrNotLeader: this node does not lead the group; the refusal names
	// the leader's client address when it is known.
	ErrNotLeader = errors.New("not the leader")
	// ErrWrongShard: this node holds no replica of the shard; the refusal
	// carries the shard map's epoch and the shard leader's address.
	ErrWrongShard = errors.New("wrong shard")
	// ErrUnavailable: not now (starting, no leader, a leader out of
	// reach, a member of an older version); try again.
	ErrUnavailable = group.ErrUnavailable
	// ErrOverloaded: too much work queued; try again later.
	ErrOverloaded = errors.New("overloaded")
	// ErrNoSpace: a member's disk alarm holds new orders.
	ErrNoSpace = errors.New("no space")
	// ErrStaleSeq: the order's seq is below its session's last applied.
	ErrStaleSeq = errors.New("stale seq")
	// ErrSessionExpired: the session is gone and seq is not its first.
	ErrSessionExpired = errors.New("session expired")
	// ErrUnknownOutcome: an order may have been applied (a forwarded
	// order's answer was lost); resend it with the same (client_id, seq).
	ErrUnknownOutcome = group.ErrUnknownOutcome
	// ErrInternal: a storage failure or a bug on this node.
	ErrInternal = errors.New("internal error")
)

// refusal is one of the node's errors with what a client needs to read,
// and for ErrNotLeader and ErrWrongShard where to go instead.
type refusal struct {
	kind       error
	msg        string
	leaderAddr string // ErrNotLeader, ErrWrongShard: the leader's client address
	epoch      uint64 // ErrWrongShard: the shard map's epoch of the shard
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// refuse is an error of the given kind saying what went wrong.
func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// codes are the protocol's codes of the node's errors, in the order they
// are tried (the first kind an error is wins).
var codes = []struct {
	kind error
	code wire.Code
}{
	{ErrInvalid, wire.CodeBadRequest},
	{ErrDenied, wire.CodePermissionDenied},
	{ErrNotLeader, wire.CodeNotLeader},
	{ErrWrongShard, wire.CodeWrongShard},
	{ErrOverloaded, wire.CodeOverloaded},
	{group.ErrBusy, wire.CodeOverloaded},
	{ErrNoSpace, wire.CodeNoSpace},
	{ErrStaleSeq, wire.CodeStaleSeq},
	{ErrSessionExpired, wire.CodeSessionExpired},
	{ErrUnavailable, wire.CodeUnavailable},
	{group.ErrNotProposed, wire.CodeUnavailable},
	{ErrUnknownOutcome, wire.CodeTimeout},
	{ErrInternal, wire.CodeInternal},
}

// wireAnswer is err as the protocol says it: the node's errors by their
// kind; an answer another node gave (relayed from a leader) as it is;
// anything else Internal, which a client takes for an unknown outcome.
func wireAnswer(err error) *wire.Error {
	var r *refusal
	if errors.As(err, &r) {
		for _, c := range codes {
			if errors.Is(r.kind, c.kind) {
				return &wire.Error{Code: c.code, Message: err.Error(), LeaderAddr: r.leaderAddr, Epoch: r.epoch}
			}
		}
	}
	var relayed *wire.Error
	if errors.As(err, &relayed) {
		return relayed
	}
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			return &wire.Error{Code: c.code, Message: err.Error()}
		}
	}
	return &wire.Error{Code: wire.CodeInternal, Message: err.Error()}
}

// groupError is the node's error for what r's group answered: a
// NotLeader naming r's leader, the group's other errors as they are, and
// anything the group does not name an unknown outcome, never a sure
// refusal.
func (n *Node) groupError(r *replica, err error) error {
	var ref *refusal
	var relayed *wire.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ref), errors.As(err, &relayed): // said already (a leader's answer, relayed)
		return err
	case errors.Is(err, group.ErrNotLeader):
		return n.notLeaderOf(r)
	case errors.Is(err, group.ErrBusy), errors.Is(err, group.ErrNotProposed),
		errors.Is(err, group.ErrUnavailable), errors.Is(err, group.ErrUnknownOutcome):
		return fmt.Errorf("node %s: %w", n.cfg.ID, err)
	}
	return fmt.Errorf("node %s: %v: %w", n.cfg.ID, err, ErrUnknownOutcome)
}

// notLeader is the NotLeader refusal of the meta group (membership,
// alarms, backups), naming its leader's client address.
func (n *Node) notLeader() error { return n.notLeaderOf(n.meta) }

// notLeaderOf is the NotLeader refusal of r's shard, naming its leader's
// client address.
func (n *Node) notLeaderOf(r *replica) error {
	_, id := r.raft().LeaderWithID()
	e := &refusal{kind: ErrNotLeader}
	if r.meta {
		e.msg = fmt.Sprintf("node %s is not the leader (leader %q)", n.cfg.ID, id)
	} else {
		e.msg = fmt.Sprintf("node %s does not lead shard %d (leader %q)", n.cfg.ID, r.shard, id)
	}
	if id != "" {
		e.leaderAddr = n.fsm.ClientAddr(string(id))
	}
	return e
}
