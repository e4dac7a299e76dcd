//go:build faults

package fsm

import "fmt"

// Version is the highest command version this build understands: a
// faults build knows CmdTestMark, so that rolling upgrades can be tested
// with a build that knows one command more than a release.
const Version uint16 = 3

// TestMarkVersion is CmdTestMark's command version: one above a release.
const TestMarkVersion uint16 = 3

// CmdTestMark is a command only faults builds know (version 3). It
// changes nothing but a counter.
const CmdTestMark CommandType = 200

func extraVersion(t CommandType) uint16 {
	if t == CmdTestMark {
		return TestMarkVersion
	}
	return 0
}

// AppendTestMark appends a CmdTestMark command.
func AppendTestMark(dst []byte) []byte { return append(dst, byte(CmdTestMark)) }

// applyExtra applies the commands only this build knows.
func (f *FSM) applyExtra(t CommandType, b []byte) (bool, error) {
	if t != CmdTestMark {
		return false, nil
	}
	if len(b) != 1 {
		return true, fmt.Errorf("%w: malformed TestMark", ErrBadCommand)
	}
	f.hooks.marks++
	return true, nil
}

// TestMarks counts the CmdTestMark entries applied.
func (f *FSM) TestMarks() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.hooks.marks
}
