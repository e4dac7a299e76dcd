//go:build !faults

package faults

import "time"

// Compiled reports whether this binary was built with -tags faults.
const Compiled = false

// FromEnv returns "": a default build has no fault switches.
func FromEnv() string { return "" }

// DiskDelay is always 0 in a default build.
func DiskDelay() time.Duration { return 0 }

// HandleSignals does nothing in a default build: SIGUSR1 and SIGUSR2 keep
// their default meaning.
func HandleSignals(func(msg string, args ...any)) (stop func()) { return func() {} }
