package serve

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func idleCount(w *workers) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}

// A finished worker parks and takes the next job instead of a new
// goroutine starting.
func TestWorkersReuseParkedGoroutine(t *testing.T) {
	w := newWorkers(4)
	done := make(chan struct{})
	w.run(func() { close(done) })
	<-done
	waitFor(t, func() bool { return idleCount(w) == 1 })
	ran := make(chan struct{})
	w.run(func() { close(ran) })
	<-ran
	waitFor(t, func() bool { return idleCount(w) == 1 }) // the same one, parked again
	w.close()
	if n := idleCount(w); n != 0 {
		t.Fatalf("%d idle workers after close", n)
	}
}

// Every job runs once, however many are in flight, and at most maxIdle
// workers stay parked afterwards; close waits for all of them.
func TestWorkersRunEveryJobAndBoundIdle(t *testing.T) {
	w := newWorkers(3)
	const jobs = 50
	var ran atomic.Int32
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(jobs)
	for range jobs {
		w.run(func() {
			started.Done()
			<-release // all 50 in flight at once: 50 goroutines
			ran.Add(1)
		})
	}
	started.Wait()
	close(release)
	waitFor(t, func() bool { return ran.Load() == jobs })
	waitFor(t, func() bool { return idleCount(w) == 3 })
	w.close()
	w.run(func() { ran.Add(1) }) // after close: runs, then exits instead of parking
	waitFor(t, func() bool { return ran.Load() == jobs+1 })
	w.wg.Wait()
	if n := idleCount(w); n != 0 {
		t.Fatalf("%d idle workers after close", n)
	}
}

// waitFor polls cond until it holds; it fails the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
