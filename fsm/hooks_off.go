//go:build !faults

package fsm

// testHooks is empty outside faults builds: nothing can stall the FSM.
type testHooks struct{}

func (testHooks) beforeApply() {}
