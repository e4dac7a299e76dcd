package raftnode

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"orderly/wire"
)

// appliedPoll is how often waitApplied looks again while Raft has not yet
// handed idx to the FSM goroutine; the FSM wakes it sooner when it applies.
const appliedPoll = 2 * time.Millisecond

// waitApplied waits until this node's state includes every entry up to
// idx. The FSM's own applied index is not enough on its own: barriers,
// no-ops and configuration changes never reach the FSM, so when idx is one
// of them the FSM's index may stop short of it until the next order. Only
// commands change state, so it is enough that Raft has handed every entry
// up to idx to the FSM goroutine and that the FSM has applied the last
// command among them.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for {
		applied, moved := n.fsm.Applied()
		if applied >= idx {
			return nil
		}
		if n.raft.AppliedIndex() >= idx {
			last, err := n.lastCommand(applied, idx)
			if err != nil {
				return wire.Errorf(wire.CodeUnavailable, "node %s: wait for index %d: %v", n.cfg.ID, idx, err)
			}
			if last <= applied {
				return nil // nothing after applied changes state
			}
			idx = last
			continue
		}
		t := time.NewTimer(appliedPoll)
		select {
		case <-moved:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return wire.Errorf(wire.CodeUnavailable, "node %s is behind: wait for index %d (applied %d): %v",
				n.cfg.ID, idx, applied, ctx.Err())
		}
		t.Stop()
	}
}

// lastCommand returns the index of the last command entry in (floor, idx],
// or floor if there is none. An entry already compacted away is covered by
// a snapshot the FSM has taken or restored, so the scan stops there.
func (n *Node) lastCommand(floor, idx uint64) (uint64, error) {
	var l raft.Log
	for i := idx; i > floor; i-- {
		if err := n.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				if first, ferr := n.logs.FirstIndex(); ferr == nil && i < first {
					return floor, nil
				}
			}
			return 0, err
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return floor, nil
}
