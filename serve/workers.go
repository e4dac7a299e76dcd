package serve

import "sync"

// workers runs a server's requests on goroutines that outlive them: a
// goroutine that finished a request parks on a stack of idle workers and
// takes the next one. It keeps its grown stack, so a request pays neither
// for a new goroutine nor for growing its stack again (both showed in the
// profiles of a node and of the balancer under load).
// Each idle worker waits on a channel of its own: a shared one would make
// every handoff contend for its lock.
type workers struct {
	maxIdle int

	mu      sync.Mutex
	idle    []chan func() // LIFO: the most recently used stack is warm
	stopped bool
	wg      sync.WaitGroup
}

func newWorkers(maxIdle int) *workers { return &workers{maxIdle: maxIdle} }

// run hands job to an idle worker, or starts one.
func (w *workers) run(job func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		ch := w.idle[n-1]
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		ch <- job // buffered: never blocks
		return
	}
	w.wg.Add(1)
	w.mu.Unlock()
	go w.loop(job)
}

func (w *workers) loop(job func()) {
	defer w.wg.Done()
	ch := make(chan func(), 1)
	for job != nil {
		job()
		if !w.park(ch) {
			return
		}
		job = <-ch // nil once close closed it
	}
}

// park puts an idle worker on the stack; false means it should exit.
func (w *workers) park(ch chan func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || len(w.idle) >= w.maxIdle {
		return false
	}
	w.idle = append(w.idle, ch)
	return true
}

// close stops the idle workers and waits for all of them. Call it after
// the last run.
func (w *workers) close() {
	w.mu.Lock()
	w.stopped = true
	for _, ch := range w.idle {
		close(ch)
	}
	w.idle = nil
	w.mu.Unlock()
	w.wg.Wait()
}
