//go:build !faults

package faults

import "time"

// Compiled reports whether this binary was built with -tags faults.
const Compiled = false

// FromEnv returns "": a default build has no fault switches.
func FromEnv() string { return "" }

// The fault points of a default build: constants, inlined and removed
// with the branches they guard.

// ForgetSession is false: the FSM keeps its sessions.
func ForgetSession() bool { return false }

// LoseOrder is false: the FSM records every order.
func LoseOrder(uint64) bool { return false }

// SkipReadIndex is false: linearizable reads go through ReadIndex.
func SkipReadIndex(leader bool) bool { return false }

// SkipSessionWait is false: session reads wait for the client's index.
func SkipSessionWait() bool { return false }

// RefuseOrder is false: the node takes orders.
func RefuseOrder() bool { return false }

// SkipFeedWait is false: the balancer waits for its feed.
func SkipFeedWait() bool { return false }

// DiskDelay is 0: the log store is not slowed down.
func DiskDelay() time.Duration { return 0 }

// BeforeApply does nothing: nothing can stall the FSM.
func BeforeApply(any) {}

// HandleSignals does nothing in a default build: SIGUSR1 and SIGUSR2 keep
// their default meaning.
func HandleSignals(func(msg string, args ...any)) (stop func()) { return func() {} }
