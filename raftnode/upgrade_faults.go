//go:build faults

package raftnode

import (
	"time"

	"orderly/faults"
	"orderly/fsm"
	"orderly/wire"
)

// startTestProposer runs the propose-v2 faults: while this node leads, it
// proposes a command of fsm.TestMarkVersion twice a second, through the version gate
// or (ungated) around it.
func (n *Node) startTestProposer() {
	ungated := n.cfg.TestFault == faults.ProposeV2Ungated
	if n.cfg.TestFault != faults.ProposeV2 && !ungated {
		return
	}
	n.every(500*time.Millisecond, func() {
		if !n.isReadyLeader() {
			return
		}
		cmd := fsm.AppendTestMark(nil)
		var err error
		if ungated {
			err = n.applyMarked(cmd, fsm.TestMarkVersion)
		} else {
			err = n.applyVersioned(cmd, fsm.TestMarkVersion)
		}
		if err != nil {
			n.log.Info("test mark held", "error", err)
			return
		}
		n.log.Info("test mark committed", "ungated", ungated)
	})
}

// testStats shows the test marks applied here.
func (n *Node) testStats() []wire.Stat {
	return []wire.Stat{{Name: "test_marks", Value: n.fsm.TestMarks()}}
}
