package raftnode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"orderly/wire"
)

// coalescer batches concurrent callers of an expensive index lookup (a
// VerifyLeader round, or a ReadIndex RPC to the leader) into one call.
//
// A caller may only share a round that starts after it arrived: the
// round's index must cover every write acknowledged before the caller's
// read began. So callers that arrive while a round is running wait for
// the next one, which starts as soon as the running one ends.
type coalescer struct {
	fn   func(context.Context) (uint64, error)
	ctx  context.Context
	kick chan struct{}
	done chan struct{}

	mu   sync.Mutex
	next *round // collects callers until the loop takes it

	// rounds and reads count the rounds run and the callers they served
	// (metrics: reads per round).
	rounds, reads atomic.Uint64
}

type round struct {
	done chan struct{}
	idx  uint64
	err  error
}

func newCoalescer(ctx context.Context, fn func(context.Context) (uint64, error)) *coalescer {
	c := &coalescer{fn: fn, ctx: ctx, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// Do joins the next round and returns its index.
func (c *coalescer) Do(ctx context.Context) (uint64, error) {
	c.reads.Add(1)
	c.mu.Lock()
	if c.next == nil {
		c.next = &round{done: make(chan struct{})}
	}
	r := c.next
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *coalescer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			c.mu.Lock()
			r := c.next
			c.next = nil
			c.mu.Unlock()
			if r != nil {
				r.err = wire.Errorf(wire.CodeUnavailable, "node shutting down")
				close(r.done)
			}
			return
		case <-c.kick:
		}
		c.mu.Lock()
		r := c.next
		c.next = nil
		c.mu.Unlock()
		if r == nil {
			continue
		}
		if c.ctx.Err() != nil { // shutting down: do not start another round
			r.err = wire.Errorf(wire.CodeUnavailable, "node shutting down")
			close(r.done)
			continue
		}
		c.rounds.Add(1)
		r.idx, r.err = c.fn(c.ctx)
		close(r.done)
	}
}

// wait blocks until the loop has stopped (after its ctx ended).
func (c *coalescer) wait() { <-c.done }

// leaderReadIndex is one ReadIndex round on the leader (Ongaro's thesis
// §6.4): once an entry of its term is committed, it takes its commit
// index, then confirms with a quorum that it still leads. The commit
// index, not the applied one: a follower may already have applied an
// entry that this leader's FSM has not (a stalled or busy FSM), and a read
// here must not go back in time behind a read there. waitApplied copes
// with entries the FSM never sees.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	for !n.isReadyLeader() {
		if n.raft.State() != raft.Leader {
			return 0, n.notLeader()
		}
		select { // elected, but the term's barrier is not applied yet
		case <-n.readyCh:
		case <-ctx.Done():
			return 0, wire.Errorf(wire.CodeUnavailable, "new leader not ready for reads")
		}
	}
	idx := n.raft.CommitIndex()
	// Never a lease: a node that only believes it leads must not answer.
	if err := n.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, n.notLeader()
		}
		return 0, wire.Errorf(wire.CodeUnavailable, "verify leadership: %v", err)
	}
	return idx, nil
}

// askLeaderReadIndex is one ReadIndex round on a follower: a ReadIndex
// request to the leader over a long-lived connection.
func (n *Node) askLeaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	id, addr := n.leaderClientAddr()
	if addr == "" {
		return 0, wire.Errorf(wire.CodeUnavailable, "no leader known (leader id %q)", id)
	}
	c, err := n.peers.get(ctx, addr)
	if err != nil {
		return 0, wire.Errorf(wire.CodeUnavailable, "reach leader %s: %v", id, err)
	}
	idx, err := c.ReadIndex(ctx)
	if err != nil {
		if _, ok := wire.CodeOf(err); ok {
			return 0, err
		}
		return 0, wire.Errorf(wire.CodeUnavailable, "read index from leader %s: %v", id, err)
	}
	return idx, nil
}

// linearizableIndex returns an index a linearizable read must wait for.
func (n *Node) linearizableIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() == raft.Leader {
		return n.localIndex.Do(ctx)
	}
	return n.remoteIndex.Do(ctx)
}

// notLeader is the NotLeader answer, naming the leader's client address.
func (n *Node) notLeader() *wire.Error {
	id, addr := n.leaderClientAddr()
	e := wire.Errorf(wire.CodeNotLeader, "node %s is not the leader (leader %q)", n.cfg.ID, id)
	e.LeaderAddr = addr
	return e
}
