package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// unanswered is a future raft never answers: an entry left on the apply
// channel's buffer, or committed and not yet applied, when Raft shut down.
type unanswered struct{ never chan error }

func (u unanswered) Error() error { return <-u.never }

func TestCloseEndsAWaitOnAFutureRaftNeverAnswers(t *testing.T) {
	c := newMemCluster(t, 1)
	g := c.replicas[0]
	waited := make(chan error, 1)
	g.routines.Go(func(context.Context) { waited <- g.Await(unanswered{never: make(chan error)}) })
	if !c.closeWithin(0, 30*time.Second) {
		t.Fatal("Close still waits for a goroutine parked on an unanswered future")
	}
	if err := <-waited; !errors.Is(err, raft.ErrRaftShutdown) {
		t.Fatalf("Await after shutdown = %v, want raft.ErrRaftShutdown", err)
	}
}

// Entries proposed while the group closes: every proposal is answered and
// Close returns (hashicorp/raft leaves some of these futures unanswered).
func TestCloseWhileProposing(t *testing.T) {
	for round := range 10 {
		c := newMemCluster(t, 1)
		_, g := c.leader()
		ctx, cancel := context.WithCancel(context.Background())
		answered := make(chan struct{})
		go func() {
			defer close(answered)
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				g.Propose(ctx, order(1, 1, uint64(round+1), seq))
			}
		}()
		time.Sleep(20 * time.Millisecond)
		if !c.closeWithin(0, 30*time.Second) {
			t.Fatalf("round %d: Close hangs while orders are proposed", round)
		}
		cancel()
		<-answered
	}
}

// closeWithin closes replica i and reports whether Close returned within d.
func (c *memCluster) closeWithin(i int, d time.Duration) bool {
	closed := make(chan error, 1)
	g := c.replicas[i]
	go func() { closed <- g.Close() }()
	c.closed[i] = true
	select {
	case <-closed:
		return true
	case <-time.After(d):
		return false
	}
}
