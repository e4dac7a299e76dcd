//go:build !faults

package faults

// Compiled reports whether this binary was built with -tags faults.
const Compiled = false

// FromEnv returns "": a default build has no fault switches.
func FromEnv() string { return "" }
