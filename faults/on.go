//go:build faults

package faults

import (
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
// (StaleReads); a leader still does the work.
func SkipReadIndex(leader bool) bool { return active == StaleReads && !leader }

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
			stalls.Delete(fsm)
			close(ch)
		})
	}
}

// slowDisk is on between SIGUSR1 and SIGUSR2 (the slow-disk nemesis).
var slowDisk atomic.Bool

// DiskDelay is how long the next log write should stall: 0 normally, and
// 20 to 200 ms while the disk is made slow.
func DiskDelay() time.Duration {
	if !slowDisk.Load() {
		return 0
	}
	return time.Duration(20+rand.IntN(181)) * time.Millisecond
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
