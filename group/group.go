package group

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/internal/coalesce"
	"orderly/internal/routines"
)

// Timing is the group's Raft timing (raft.Config's fields of the same
// names); a zero field keeps raft.DefaultConfig's.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
}

// Stores are the group's durable state.
type Stores struct {
	Logs      raft.LogStore // read by the applied wait too: give it cached
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
}

// Config is what a group runs on.
type Config struct {
	ID        string // this replica's server id
	Logger    hclog.Logger
	Timing    Timing
	Stores    Stores
	Transport raft.Transport
	FSM       fsm.Options
	// RequestTimeout bounds what the group does for one request: an
	// entry's proposal, a ReadIndex round, a term entry.
	RequestTimeout time.Duration
	// AskLeader asks the leader for a read index: a follower's
	// linearizable read. Its errors are returned as they are.
	AskLeader func(ctx context.Context) (uint64, error)
	// TermEntry commits an entry in a new leader's term; nil: a barrier.
	TermEntry func() error
}

// Group is one running Raft group.
type Group struct {
	cfg      Config
	log      hclog.Logger
	fsm      *fsm.FSM
	raft     *raft.Raft
	proposer *proposer

	localIndex  *coalesce.Coalescer // ReadIndex as leader
	remoteIndex *coalesce.Coalescer // ReadIndex asked of the leader

	// readyTerm is the term whose term entry this leader has seen applied;
	// reads are served only while it equals the current term (DESIGN §5).
	readyTerm atomic.Uint64
	readyCh   chan struct{} // poked when readyTerm moves
	shut      chan struct{} // closed once Raft has shut down (Await)

	// routines owns the group's goroutines: the leadership loop, the
	// proposer's loop and its waiters (the coalescers own theirs).
	routines *routines.Group
}

// New starts the group's Raft on its stores. Whether to bootstrap is the
// caller's choice (Raft().BootstrapCluster).
func New(cfg Config) (*Group, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = cfg.Logger.Named("raft")
	setIf(&rc.HeartbeatTimeout, cfg.Timing.HeartbeatTimeout)
	setIf(&rc.ElectionTimeout, cfg.Timing.ElectionTimeout)
	setIf(&rc.LeaderLeaseTimeout, cfg.Timing.LeaderLeaseTimeout)
	setIf(&rc.CommitTimeout, cfg.Timing.CommitTimeout)
	setIf(&rc.SnapshotThreshold, cfg.Timing.SnapshotThreshold)
	setIf(&rc.SnapshotInterval, cfg.Timing.SnapshotInterval)
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft config: %w", err)
	}
	g := &Group{cfg: cfg, log: cfg.Logger, readyCh: make(chan struct{}, 1), shut: make(chan struct{})}
	g.fsm = fsm.New(cfg.FSM)
	r, err := raft.NewRaft(rc, g.fsm, cfg.Stores.Logs, cfg.Stores.Stable, cfg.Stores.Snapshots, cfg.Transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	g.raft = r
	g.routines = routines.New()
	g.proposer = newProposer(g.routines, r, g.Await, cfg.RequestTimeout)
	g.localIndex = coalesce.New(g.routines.Context(), g.leaderReadIndex)
	g.remoteIndex = coalesce.New(g.routines.Context(), g.askLeader)
	g.routines.Go(g.watchLeadership)
	return g, nil
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// Raft is the group's Raft, for membership, snapshots and status.
func (g *Group) Raft() *raft.Raft { return g.raft }

// FSM is the group's state machine.
func (g *Group) FSM() *fsm.FSM { return g.fsm }

// IsLeader reports whether this replica leads the group.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader is the id of the replica that leads the group, "" if none is
// known.
func (g *Group) Leader() string {
	_, id := g.raft.LeaderWithID()
	return string(id)
}

// IsReadyLeader reports whether this replica leads and has committed an
// entry of its current term.
func (g *Group) IsReadyLeader() bool {
	return g.raft.State() == raft.Leader && g.readyTerm.Load() == g.raft.CurrentTerm()
}

// Close stops the group's loops, shuts Raft down (which closes the
// transport and answers every entry in flight) and waits for every
// goroutine. The stores are the caller's to close.
func (g *Group) Close() error {
	g.routines.Cancel()
	g.localIndex.Wait()
	g.remoteIndex.Wait()
	err := g.raft.Shutdown().Error()
	close(g.shut)
	g.routines.Wait()
	if err != nil {
		return fmt.Errorf("shutdown raft: %w", err)
	}
	return nil
}

// watchLeadership makes a new leader ready for reads: it waits for an
// entry of its own term to be applied, which applies everything before it
// (DESIGN §5, the trap Consul fell into).
func (g *Group) watchLeadership(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-g.raft.LeaderCh():
			if !isLeader {
				g.log.Info("lost leadership")
				continue
			}
			term := g.raft.CurrentTerm()
			g.log.Info("won leadership", "term", term)
			for ctx.Err() == nil && g.raft.State() == raft.Leader {
				if err := g.commitTermEntry(); err != nil {
					g.log.Warn("term entry after election failed", "term", term, "error", err)
					continue
				}
				g.readyTerm.Store(term)
				select {
				case g.readyCh <- struct{}{}:
				default:
				}
				g.log.Info("leader ready for reads", "term", term, "applied", g.fsm.AppliedIndex())
				break
			}
		}
	}
}

func (g *Group) commitTermEntry() error {
	if g.cfg.TermEntry != nil {
		return g.cfg.TermEntry()
	}
	return g.Await(g.raft.Barrier(g.cfg.RequestTimeout))
}

// Propose places one order and waits for its entry to be applied. Only
// ErrUnknownOutcome leaves the order's fate open.
func (g *Group) Propose(ctx context.Context, o fsm.PlaceOrder) (fsm.Outcome, error) {
	if g.raft.State() != raft.Leader {
		return fsm.Outcome{}, ErrNotLeader
	}
	res, err := g.proposer.propose(ctx, o)
	if err != nil {
		return fsm.Outcome{}, applyError(err)
	}
	return res, nil
}

// applyError sorts the proposer's and raft.Apply's errors by whether the
// order may have been applied.
func applyError(err error) error {
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrNotProposed), errors.Is(err, ErrUnknownOutcome):
		return err
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotProposed, err)
	}
	return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
}

// EntriesProposed and OrdersProposed count what this replica proposed as
// leader (orders per entry = orders / entries).
func (g *Group) EntriesProposed() uint64 { return g.proposer.entries.Load() }

// OrdersProposed: see EntriesProposed.
func (g *Group) OrdersProposed() uint64 { return g.proposer.orders.Load() }

// ReadIndexRounds and ReadIndexReads count ReadIndex rounds and the
// linearizable reads they served, as leader or as follower.
func (g *Group) ReadIndexRounds(asLeader bool) uint64 {
	if asLeader {
		return g.localIndex.Rounds.Load()
	}
	return g.remoteIndex.Rounds.Load()
}

// ReadIndexReads: see ReadIndexRounds.
func (g *Group) ReadIndexReads(asLeader bool) uint64 {
	if asLeader {
		return g.localIndex.Reads.Load()
	}
	return g.remoteIndex.Reads.Load()
}
