//go:build faults

package faults

import (
	"math/rand/v2"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Compiled reports whether this binary was built with -tags faults.
const Compiled = true

// FromEnv returns the fault named by $ORDERLY_TEST_FAULT.
func FromEnv() string { return os.Getenv(EnvVar) }

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
