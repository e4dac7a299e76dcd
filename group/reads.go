package group

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"orderly/faults"
	"orderly/internal/coalesce"
)

// Level is how fresh a read must be (DESIGN §5).
type Level uint8

const (
	// Stale: whatever this replica has applied.
	Stale Level = iota
	// Session: at least the client's highest seen index (minIndex).
	Session
	// Linearizable: everything committed when the read began.
	Linearizable
)

// Read waits until this replica may serve a read at level, and returns
// once its FSM has applied everything the level requires (and minIndex).
func (g *Group) Read(ctx context.Context, level Level, minIndex uint64) error {
	if g.raft.LastIndex() == 0 {
		// Not even stale: a replica on empty stores that waits to be
		// added (or to bootstrap) has no data, and an empty record would
		// read as a customer who never ordered.
		return fmt.Errorf("%w: no Raft state yet: this replica waits to join its group", ErrUnavailable)
	}
	switch level {
	case Linearizable:
		if faults.SkipReadIndex() && g.raft.State() != raft.Leader {
			return nil // a follower's local state, no ReadIndex
		}
		idx, err := g.linearizableIndex(ctx)
		if err != nil {
			return err
		}
		return g.WaitApplied(ctx, max(idx, minIndex))
	case Session:
		if faults.SkipSessionWait() {
			return nil // whatever this replica has
		}
		// Read-your-writes and monotonic reads: the client's highest seen
		// index must be applied here before we answer.
		return g.WaitApplied(ctx, minIndex)
	}
	return nil
}

// ReadIndex answers a follower's question for a read index. It never
// forwards: a replica that does not lead says so, and the follower asks
// again.
func (g *Group) ReadIndex(ctx context.Context) (uint64, error) {
	if g.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	return closedIsUnavailable(g.localIndex.Do(ctx))
}

// linearizableIndex returns an index a linearizable read must wait for.
func (g *Group) linearizableIndex(ctx context.Context) (uint64, error) {
	if g.raft.State() == raft.Leader {
		return closedIsUnavailable(g.localIndex.Do(ctx))
	}
	return closedIsUnavailable(g.remoteIndex.Do(ctx))
}

// closedIsUnavailable says a lookup the closing group did not run is
// ErrUnavailable: no read was served, ask another replica.
func closedIsUnavailable(idx uint64, err error) (uint64, error) {
	if errors.Is(err, coalesce.ErrClosed) {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return idx, err
}

// leaderReadIndex is one ReadIndex round on the leader (Ongaro's thesis
// §6.4): once an entry of its term is committed, it takes its commit
// index, then confirms with a quorum that it still leads. The commit
// index, not the applied one: a follower may already have applied an
// entry that this leader's FSM has not (a stalled or busy FSM), and a read
// here must not go back in time behind a read there. WaitApplied copes
// with entries the FSM never sees.
func (g *Group) leaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	for !g.IsReadyLeader() {
		if g.raft.State() != raft.Leader {
			return 0, ErrNotLeader
		}
		select { // elected, but the term entry is not applied yet
		case <-g.readyCh:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: new leader not ready for reads", ErrUnavailable)
		}
	}
	idx := g.raft.CommitIndex()
	// Never a lease: a replica that only believes it leads must not answer.
	if err := g.Await(g.raft.VerifyLeader()); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, ErrNotLeader
		}
		return 0, fmt.Errorf("%w: verify leadership: %v", ErrUnavailable, err)
	}
	return idx, nil
}

// askLeader is one ReadIndex round on a follower.
func (g *Group) askLeader(ctx context.Context) (uint64, error) {
	if g.cfg.AskLeader == nil {
		return 0, fmt.Errorf("%w: this replica cannot reach its leader", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	return g.cfg.AskLeader(ctx)
}

// appliedPoll is how often WaitApplied looks again while Raft has not yet
// handed idx to the FSM goroutine; the FSM wakes it sooner when it applies.
const appliedPoll = 2 * time.Millisecond

// WaitApplied waits until this replica's state includes every entry up to
// idx. The FSM's own applied index is not enough on its own: barriers,
// no-ops and configuration changes never reach the FSM, so when idx is one
// of them the FSM's index may stop short of it until the next order. Only
// commands change state, so it is enough that Raft has handed every entry
// up to idx to the FSM goroutine and that the FSM has applied the last
// command among them.
func (g *Group) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		applied, moved := g.fsm.Applied()
		if applied >= idx {
			return nil
		}
		if g.raft.AppliedIndex() >= idx {
			last, err := g.lastCommand(applied, idx)
			if err != nil {
				return fmt.Errorf("%w: wait for index %d: %v", ErrUnavailable, idx, err)
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
			return fmt.Errorf("%w: behind: wait for index %d (applied %d): %v", ErrUnavailable, idx, applied, ctx.Err())
		}
		t.Stop()
	}
}

// SettledIndex is the highest index whose state this replica's FSM
// holds: Raft's applied index when no command after the FSM's applied
// index is among the entries Raft has handed over (they are no-ops,
// barriers, configuration changes), else the FSM's.
func (g *Group) SettledIndex() uint64 {
	applied, _ := g.fsm.Applied()
	raftApplied := g.raft.AppliedIndex()
	if raftApplied <= applied {
		return applied
	}
	if last, err := g.lastCommand(applied, raftApplied); err == nil && last <= applied {
		return raftApplied
	}
	return applied
}

// lastCommand returns the index of the last command entry in (floor, idx],
// or floor if there is none. An entry already compacted away is covered by
// a snapshot the FSM has taken or restored, so the scan stops there.
func (g *Group) lastCommand(floor, idx uint64) (uint64, error) {
	logs := g.cfg.Stores.Logs
	var l raft.Log
	for i := idx; i > floor; i-- {
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				if first, ferr := logs.FirstIndex(); ferr == nil && i < first {
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
