package raftnode

import (
	"errors"
	"fmt"
	"testing"

	"orderly/group"
	"orderly/wire"
)

// TestWireAnswer: each of the node's errors becomes its protocol code at
// the edge, with its message and where to go; a leader's answer relayed
// stays as it was; what no one named is Internal (an unknown outcome),
// never a sure refusal.
func TestWireAnswer(t *testing.T) {
	relayed := wire.Errorf(wire.CodeStaleSeq, "from the leader")
	for _, c := range []struct {
		err  error
		code wire.Code
		msg  string
	}{
		{refuse(ErrInvalid, "order: bad %d", 7), wire.CodeBadRequest, "order: bad 7"},
		{refuse(ErrDenied, "no"), wire.CodePermissionDenied, "no"},
		{refuse(ErrOverloaded, "busy"), wire.CodeOverloaded, "busy"},
		{refuse(ErrNoSpace, "full"), wire.CodeNoSpace, "full"},
		{refuse(ErrStaleSeq, "old"), wire.CodeStaleSeq, "old"},
		{refuse(ErrSessionExpired, "gone"), wire.CodeSessionExpired, "gone"},
		{refuse(ErrUnavailable, "later"), wire.CodeUnavailable, "later"},
		{refuse(ErrUnknownOutcome, "lost"), wire.CodeTimeout, "lost"},
		{refuse(ErrInternal, "bug"), wire.CodeInternal, "bug"},
		{fmt.Errorf("scan: %w", refuse(ErrInvalid, "limit")), wire.CodeBadRequest, "scan: limit"},
		{fmt.Errorf("node n1: %w", group.ErrBusy), wire.CodeOverloaded, "node n1: not proposed in time"},
		{fmt.Errorf("node n1: %w", group.ErrNotProposed), wire.CodeUnavailable, "node n1: not proposed"},
		{fmt.Errorf("node n1: %w", group.ErrUnknownOutcome), wire.CodeTimeout, "node n1: outcome unknown"},
		{fmt.Errorf("ask: %w", relayed), wire.CodeStaleSeq, "from the leader"},
		{errors.New("disk on fire"), wire.CodeInternal, "disk on fire"},
	} {
		got := wireAnswer(c.err)
		if got.Code != c.code || got.Message != c.msg {
			t.Errorf("wireAnswer(%v) = %v %q, want %v %q", c.err, got.Code, got.Message, c.code, c.msg)
		}
	}
	ws := wireAnswer(&refusal{kind: ErrWrongShard, msg: "elsewhere", leaderAddr: "127.0.0.1:7", epoch: 9})
	if ws.Code != wire.CodeWrongShard || ws.LeaderAddr != "127.0.0.1:7" || ws.Epoch != 9 {
		t.Errorf("WrongShard answer %+v lost where to go", ws)
	}
	nl := wireAnswer(fmt.Errorf("order: %w", &refusal{kind: ErrNotLeader, msg: "not me", leaderAddr: "127.0.0.1:8"}))
	if nl.Code != wire.CodeNotLeader || nl.LeaderAddr != "127.0.0.1:8" {
		t.Errorf("NotLeader answer %+v lost the leader", nl)
	}
}

// TestGroupErrorIsNeverASureRefusalByDefault: an error the group does not
// name, after an order reached Raft, is an unknown outcome.
func TestGroupErrorIsNeverASureRefusalByDefault(t *testing.T) {
	n := &Node{cfg: Config{ID: "n1"}}
	err := n.groupError(nil, errors.New("raft: something new"))
	if !errors.Is(err, ErrUnknownOutcome) || wireAnswer(err).Code != wire.CodeTimeout {
		t.Errorf("unnamed group error: %v (%v), want an unknown outcome", err, wireAnswer(err).Code)
	}
	said := refuse(ErrNoSpace, "full")
	if got := n.groupError(nil, said); got != said {
		t.Errorf("a refusal already said was changed: %v", got)
	}
}
