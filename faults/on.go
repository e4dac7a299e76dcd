//go:build faults

package faults

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Compiled reports whether this binary was built with -tags faults.
const Compiled = true

// FromEnv returns the fault named by $ORDERLY_TEST_FAULT.
func FromEnv() string { return os.Getenv(EnvVar) }

// active is the process's fault, read once when it starts (the daemons
// refuse to start with one not in All: Validate).
var active = FromEnv()

// ForgetSession: the FSM forgets a client's session before each order,
// so a retried write is applied again (ForgetSessions).
func ForgetSession() bool { return active == ForgetSessions }

// LoseOrder: the FSM acknowledges the order at index but records nothing,
// every fifth entry (LoseOrders).
func LoseOrder(index uint64) bool { return active == LoseOrders && index%5 == 0 }

// SkipReadIndex: a follower answers a linearizable read from local state
// (StaleReads; the point asks only on followers).
func SkipReadIndex() bool { return active == StaleReads }

// SkipSessionWait: a session read does not wait for the client's index
// (SessionIgnoresIndex).
func SkipSessionWait() bool { return active == SessionIgnoresIndex }

// RefuseOrder: the node answers every order Unavailable (RefuseWrites).
func RefuseOrder() bool { return active == RefuseWrites }

// SkipFeedWait: the balancer answers a linearizable read from its cache
// without its feed reaching the read index (BalancerSkipsFeedWait).
func SkipFeedWait() bool { return active == BalancerSkipsFeedWait }

// stalls are the FSMs a test has stalled (StallApply), by identity.
var stalls sync.Map // any -> chan struct{}

// BeforeApply runs on an FSM's apply goroutine before each batch: it
// waits while a test has stalled that FSM.
func BeforeApply(fsm any) {
	if ch, ok := stalls.Load(fsm); ok {
		<-ch.(chan struct{})
	}
}

// StallApply makes fsm's later batches wait until release is called, as
// a busy FSM would (a large batch, a snapshot on the FSM goroutine).
func StallApply(fsm any) (release func()) {
	ch := make(chan struct{})
	stalls.Store(fsm, ch)
	var once sync.Once
	return func() {
		once.Do(func() {
			stalls.CompareAndDelete(fsm, ch) // a later stall of the same FSM stays
			close(ch)
		})
	}
}

// slowDisk is on between SIGUSR1 and SIGUSR2 (the slow-disk nemesis).
var slowDisk atomic.Bool

// logWrites are what tests did to one log store (SlowLogWrites,
// FailLogWrites), by identity.
var logWrites sync.Map // any -> *logWriteFaults

type logWriteFaults struct {
	slowBy   atomic.Int64 // nanoseconds
	failNext atomic.Int32
}

func logWriteFaultsOf(store any) *logWriteFaults {
	f, _ := logWrites.LoadOrStore(store, &logWriteFaults{})
	return f.(*logWriteFaults)
}

// ErrLogWrite is what a log write made to fail answers.
var ErrLogWrite = errors.New("faults: log store write failed on purpose")

// BeforeLogWrite runs before each write of a log store: it stalls 20 to
// 200 ms while the disk is made slow (SIGUSR1), for as long as a test
// slowed this store down, and fails the write if a test asked for it.
func BeforeLogWrite(store any) error {
	if slowDisk.Load() {
		time.Sleep(time.Duration(20+rand.IntN(181)) * time.Millisecond)
	}
	f, ok := logWrites.Load(store)
	if !ok {
		return nil
	}
	lw := f.(*logWriteFaults)
	if d := lw.slowBy.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if lw.failNext.Load() > 0 && lw.failNext.Add(-1) >= 0 {
		return ErrLogWrite
	}
	return nil
}

// SlowLogWrites slows every write of store down by d (0: not any more).
func SlowLogWrites(store any, d time.Duration) { logWriteFaultsOf(store).slowBy.Store(int64(d)) }

// FailLogWrites makes the next n writes of store fail.
func FailLogWrites(store any, n int32) { logWriteFaultsOf(store).failNext.Store(n) }

// freeSpace is the free space tests make a disk alarm see, by identity.
var freeSpace sync.Map // any -> uint64

// FreeSpace is what a disk alarm sees: the free space measured, or what a
// test set for it (SetFreeSpace).
func FreeSpace(alarm any, measured uint64, err error) (uint64, error) {
	if v, ok := freeSpace.Load(alarm); ok {
		return v.(uint64), nil
	}
	return measured, err
}

// SetFreeSpace makes alarm see free bytes; nil: the disk again.
func SetFreeSpace(alarm any, free *uint64) {
	if free == nil {
		freeSpace.Delete(alarm)
		return
	}
	freeSpace.Store(alarm, *free)
}

// HandleSignals makes SIGUSR1 slow the log store down and SIGUSR2 end it,
// until stop is called. logf reports each switch.
func HandleSignals(logf func(msg string, args ...any)) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				slowDisk.Store(s == syscall.SIGUSR1)
				logf("TEST FAULT: slow disk switched", "slow", s == syscall.SIGUSR1)
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-exited
	}
}
