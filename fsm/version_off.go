//go:build !faults

package fsm

// Version is the highest command version this build understands.
const Version uint16 = 2

func extraVersion(CommandType) uint16 { return 0 }

func (f *FSM) applyExtra(CommandType, []byte) (bool, error) { return false, nil }
