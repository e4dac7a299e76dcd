//go:build !faults

package faults

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
func SkipReadIndex() bool { return false }

// SkipSessionWait is false: session reads wait for the client's index.
func SkipSessionWait() bool { return false }

// RefuseOrder is false: the node takes orders.
func RefuseOrder() bool { return false }

// SkipFeedWait is false: the balancer waits for its feed.
func SkipFeedWait() bool { return false }

// BeforeLogWrite is nil: the log store is neither slowed down nor made
// to fail.
func BeforeLogWrite(any) error { return nil }

// FreeSpace is the free space measured.
func FreeSpace(_ any, measured uint64, err error) (uint64, error) { return measured, err }

// BeforeApply does nothing: nothing can stall the FSM.
func BeforeApply(any) {}

// HandleSignals does nothing in a default build: SIGUSR1 and SIGUSR2 keep
// their default meaning.
func HandleSignals(func(msg string, args ...any)) (stop func()) { return func() {} }
