//go:build faults

package faults

import "os"

// Compiled reports whether this binary was built with -tags faults.
const Compiled = true

// FromEnv returns the fault named by $ORDERLY_TEST_FAULT.
func FromEnv() string { return os.Getenv(EnvVar) }
