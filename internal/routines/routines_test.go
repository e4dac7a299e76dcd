package routines

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Stop ends every goroutine's context and returns only once each has
// returned, including those a goroutine of the group started itself.
func TestStopWaitsForEveryGoroutine(t *testing.T) {
	g := New()
	var running, ticks atomic.Int32
	for range 3 {
		g.Go(func(ctx context.Context) {
			running.Add(1)
			defer running.Add(-1)
			g.Go(func(ctx context.Context) { // started by a member
				running.Add(1)
				defer running.Add(-1)
				<-ctx.Done()
				time.Sleep(10 * time.Millisecond)
			})
			<-ctx.Done()
		})
	}
	g.Every(time.Millisecond, func() { ticks.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for (running.Load() < 6 || ticks.Load() < 2) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if running.Load() != 6 || ticks.Load() < 2 {
		t.Fatalf("%d goroutines running and %d ticks, want 6 and at least 2", running.Load(), ticks.Load())
	}
	g.Stop()
	if n := running.Load(); n != 0 {
		t.Fatalf("Stop returned with %d goroutines running", n)
	}
	after := ticks.Load()
	time.Sleep(5 * time.Millisecond)
	if ticks.Load() != after {
		t.Fatal("Every ticked after Stop")
	}
	if g.Context().Err() == nil {
		t.Fatal("the context did not end at Stop")
	}
}
