//go:build faults

package raftnode

import (
	"testing"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// waitUntil polls cond every 50 ms until it holds, or fails the test.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statOf is a status line's value (0 if absent).
func statOf(s wire.StatusInfo, name string) uint64 {
	for _, st := range s.Stats {
		if st.Name == name {
			return st.Value
		}
	}
	return 0
}

// callerNode is a peer node named name, as its certificate says.
func callerNode(name string) serve.Caller {
	return serve.Caller{ConnID: 2, Name: name, Role: wire.RoleNode}
}
