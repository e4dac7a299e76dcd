package coalesce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCoalescerBatchesAndNeverReusesAnOlderRound: many concurrent callers
// share few rounds, and a caller never gets the index of a round that
// started before it arrived.
func TestCoalescerBatchesAndNeverReusesAnOlderRound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var rounds atomic.Int64
	var index atomic.Uint64 // "commit index": grows while rounds run
	c := New(ctx, func(context.Context) (uint64, error) {
		rounds.Add(1)
		idx := index.Load() // the round's index is read at its start
		time.Sleep(2 * time.Millisecond)
		return idx, nil
	})
	defer func() { cancel(); c.Wait() }()

	const callers = 200
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := index.Add(1) // a write acknowledged before this read began
			got, err := c.Do(context.Background())
			if err != nil {
				t.Errorf("Do: %v", err)
				return
			}
			if got < before {
				t.Errorf("read got index %d, but %d was committed before it began", got, before)
			}
		}()
	}
	wg.Wait()
	if r := rounds.Load(); r >= callers/2 {
		t.Errorf("%d rounds for %d concurrent callers: not batched", r, callers)
	}
	t.Logf("%d callers served by %d rounds", callers, rounds.Load())
}

// TestCoalescerShutdown: a waiting caller gets Unavailable when the node
// shuts down, and a cancelled caller returns at once.
func TestCoalescerShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	block := make(chan struct{})
	c := New(ctx, func(ctx context.Context) (uint64, error) {
		<-block
		return 0, ctx.Err()
	})
	first := make(chan error, 1)
	go func() { _, err := c.Do(context.Background()); first <- err }()
	time.Sleep(10 * time.Millisecond) // the first round is now running

	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	if _, err := c.Do(short); err == nil {
		t.Fatal("a cancelled caller got an index")
	}
	second := make(chan error, 1)
	go func() { _, err := c.Do(context.Background()); second <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	close(block)
	if err := <-first; err == nil {
		t.Error("the round cut by shutdown reported success")
	}
	err := <-second
	if !errors.Is(err, ErrClosed) {
		t.Errorf("caller waiting at shutdown: %v, want ErrClosed", err)
	}
	c.Wait()
}
