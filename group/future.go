package group

import (
	"github.com/hashicorp/raft"
)

// Await waits for f's answer, or until the group has shut Raft down.
//
// hashicorp/raft does not answer every future it accepted: an entry still
// queued on its apply channel (buffered, with BatchApplyCh) when it shuts
// down, or one committed but not yet handed to the FSM, is left waiting
// forever. A goroutine of the group that waited on such a future would
// hold Close forever, so every wait on a Raft future goes through Await.
// After the shutdown the error is raft.ErrRaftShutdown (an unknown
// outcome), unless the answer came first. The goroutine parked on an
// unanswered future is raft's leftover and holds nothing of the group's.
func (g *Group) Await(f raft.Future) error {
	answer := make(chan error, 1)
	go func() { answer <- f.Error() }()
	select {
	case err := <-answer:
		return err
	case <-g.shut:
		select {
		case err := <-answer:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}
