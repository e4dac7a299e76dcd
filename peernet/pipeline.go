package peernet

import (
	"sync"

	"github.com/hashicorp/raft"
)

// hashicorp/raft's pipelined replication can stop replicating to a
// follower for good (hashicorp/raft#612, still open in v1.8.0): when the
// follower answers an AppendEntries with Success=false (its log store
// failed a write, e.g. a full disk), the leader's pipeline decoder stops
// reading the pipeline's finished futures; the transport's response
// decoder then blocks handing one over, the next send blocks handing its
// future to that decoder, and the send loop, stuck in that send, never
// sees that the decoder quit. Heartbeats go on, so no election heals it:
// the follower just never gets another entry from that leader. The chaos
// suite's disk-full nemesis under load hit it (a follower not caught up a
// minute after its disk was freed).
//
// drainingTransport fixes it from outside: its pipelines take every
// finished future off the transport's channel at once and keep them in a
// queue for raft, so the transport never blocks on a reader that left, the
// send loop's next send goes through, and it sees the decoder's end and
// falls back to plain replication, as raft intends.
type drainingTransport struct {
	*raft.NetworkTransport
}

// AppendEntriesPipeline wraps the transport's pipeline.
func (t drainingTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return newDrainingPipeline(p), nil
}

// drainingPipeline is an AppendPipeline whose finished futures wait in an
// unbounded queue (they are few: the send loop stops within a send or two
// once raft's decoder has left).
type drainingPipeline struct {
	raft.AppendPipeline
	out  chan raft.AppendFuture
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newDrainingPipeline(p raft.AppendPipeline) *drainingPipeline {
	d := &drainingPipeline{AppendPipeline: p, out: make(chan raft.AppendFuture), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *drainingPipeline) run() {
	defer close(d.done)
	in := d.AppendPipeline.Consumer()
	var queue []raft.AppendFuture
	for {
		var out chan raft.AppendFuture
		var next raft.AppendFuture
		if len(queue) > 0 {
			out, next = d.out, queue[0]
		}
		select {
		case f := <-in:
			queue = append(queue, f)
		case out <- next:
			queue[0] = nil
			queue = queue[1:]
		case <-d.stop:
			return
		}
	}
}

// Consumer is what raft's pipeline decoder reads.
func (d *drainingPipeline) Consumer() <-chan raft.AppendFuture { return d.out }

// Close closes the transport's pipeline and stops the queue.
func (d *drainingPipeline) Close() error {
	err := d.AppendPipeline.Close()
	d.once.Do(func() { close(d.stop) })
	<-d.done
	return err
}
