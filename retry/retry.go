// Package retry is the one retry loop of orderly's clients: the client
// library and the balancer both send a request to a cluster whose leader
// may change, whose nodes may die or pause, and must resend a write with
// the same (client_id, seq) until its outcome is known. The loop follows
// NotLeader to the named leader, moves on from nodes that do not answer,
// backs off, and gives up at a deadline; what "move on" means (rotate an
// address list, mark a backend failed) is the caller's (Attempter).
package retry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"orderly/wire"
)

// Failure is how one attempt went wrong, for Attempter.Failed.
type Failure int

const (
	// NotSent: the request never left (no node to pick, dial failed). It
	// was surely not applied.
	NotSent Failure = iota
	// Lost: sent, and no answer came (connection lost, or the attempt timed
	// out). It may have been applied; the node may be dead or paused.
	Lost
	// NotLeader: the node does not lead; the error names the leader if it
	// knows one.
	NotLeader
	// Busy: Unavailable or Overloaded; surely not applied, another node may
	// take it.
	Busy
)

// ErrBudgetSpent is GiveUp's why when Policy.Timeout has passed (as
// opposed to the caller's ctx ending). It is a context.DeadlineExceeded.
var ErrBudgetSpent = fmt.Errorf("retry budget spent: %w", context.DeadlineExceeded)

// ErrNotSent marks an error of Attempter.Try that happened before the
// request was sent.
var ErrNotSent = errors.New("request not sent")

// Attempter is one caller's side of the loop. Do calls its methods from
// the calling goroutine only.
type Attempter interface {
	// Try makes one attempt on the node it chooses, bounded by timeout.
	// An error wrapping ErrNotSent means the request never left.
	Try(ctx context.Context, timeout time.Duration) (wire.Message, error)
	// Failed is told how the last attempt failed. After NotLeader it says
	// whether a leader is now known, so that the next attempt goes there
	// at once. A non-nil stop ends the loop with that error: retrying
	// cannot help (no address speaks orderly, for one).
	Failed(f Failure, err error) (leaderKnown bool, stop error)
	// GiveUp turns the last error into the caller's answer: unknown says
	// whether a write may have been applied; why is ctx.Err(),
	// ErrBudgetSpent, or (only with unknown) the sure refusal that ended
	// the loop: a refusal is sure for the attempt that got it, and says
	// nothing of an earlier attempt whose outcome was unknown.
	GiveUp(last error, unknown bool, why error) error
}

// Policy bounds the loop.
type Policy struct {
	// Timeout is the budget for the whole call.
	Timeout time.Duration
	// MaxBackoff caps the pause between attempts; pauses start at 5 ms and
	// double.
	MaxBackoff time.Duration
	// Retries and Redirects, when set, count attempts after the first and
	// NotLeader answers.
	Retries, Redirects *atomic.Uint64
}

const minBackoff = 5 * time.Millisecond

// AttemptTimeout bounds one attempt: a third of the budget, at least a
// second, so a paused or cut-off node costs a few seconds and not the
// whole budget.
func (p Policy) AttemptTimeout() time.Duration { return max(p.Timeout/3, time.Second) }

// Do runs attempts until one is answered, an answer is final (BadRequest,
// StaleSeq, ...), ctx ends or the budget is spent. The deadline is kept as
// a time, not a derived context: contexts cost a lock on the parent per
// call, and the balancer makes many calls on one connection's context.
func Do(ctx context.Context, p Policy, a Attempter) (wire.Message, error) {
	return Resume(ctx, p, a, nil)
}

// Resume is Do after a first attempt made elsewhere failed with first
// (nil: none was made): the loop goes on from there, knowing whether that
// attempt may have been applied. The Attempter's Failed must know the
// node of that attempt. The balancer's forwarding without a waiting
// goroutine hands its failures over so.
func Resume(ctx context.Context, p Policy, a Attempter, first error) (wire.Message, error) {
	deadline := time.Now().Add(p.Timeout)
	backoff := minBackoff
	unknown := false // a write attempt may have reached the log
	redirects := 0   // NotLeader answers in a row
	var last error
	// refused ends the loop on an answer that retrying cannot change. It
	// is the call's answer only if no attempt may have been applied.
	refused := func(err error) error {
		if unknown {
			return a.GiveUp(err, true, err)
		}
		return err
	}
	over := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return ErrBudgetSpent
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if backoff > 0 {
				t := time.NewTimer(min(backoff, time.Until(deadline)))
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
			if why := over(); why != nil {
				return nil, a.GiveUp(last, unknown, why)
			}
			if p.Retries != nil {
				p.Retries.Add(1)
			}
			backoff = min(max(backoff*2, minBackoff), p.MaxBackoff)
		}
		var resp wire.Message
		var err error
		if attempt == 0 && first != nil {
			err = first
		} else if resp, err = a.Try(ctx, max(min(p.AttemptTimeout(), time.Until(deadline)), time.Millisecond)); err == nil {
			return resp, nil
		}
		last = err
		code, isWire := wire.CodeOf(err)
		if code == wire.CodeWrongShard {
			// The node holds no replica of the shard: like NotLeader,
			// not applied, and LeaderAddr names where to go.
			code = wire.CodeNotLeader
		}
		if code != wire.CodeNotLeader {
			redirects = 0
		}
		switch {
		case errors.Is(err, ErrNotSent):
			if _, stop := a.Failed(NotSent, err); stop != nil {
				return nil, stop
			}
		case !isWire && ctx.Err() != nil:
			// The caller went away mid-attempt: it may have been applied,
			// and nothing says the node is unwell.
			return nil, a.GiveUp(last, true, ctx.Err())
		case !isWire:
			unknown = true
			if _, stop := a.Failed(Lost, err); stop != nil {
				return nil, stop
			}
		case code == wire.CodeNotLeader:
			if p.Redirects != nil {
				p.Redirects.Add(1)
			}
			redirects++
			known, stop := a.Failed(NotLeader, err)
			if stop != nil {
				return nil, stop
			}
			if known && redirects == 1 {
				// A known leader: go there at once. If it sends us on again,
				// nodes disagree (an election is under way), and the backoff
				// keeps us from bouncing between them.
				backoff = 0
			}
		case code == wire.CodeSessionExpired, code == wire.CodeNoSpace:
			// Final for now (the same seq meets the same refusal; a full
			// disk takes longer than a retry's patience). Applied only if
			// an earlier attempt's outcome was unknown.
			return nil, refused(err)
		case code.Unknown():
			unknown = true
		case code == wire.CodeUnavailable || code == wire.CodeOverloaded:
			if _, stop := a.Failed(Busy, err); stop != nil {
				return nil, stop
			}
		default: // BadRequest, StaleSeq, ...: retrying cannot help
			return nil, refused(err)
		}
		if why := over(); why != nil {
			return nil, a.GiveUp(last, unknown, why)
		}
	}
}
