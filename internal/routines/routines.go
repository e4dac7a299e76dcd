// Package routines owns a component's goroutines, as hashicorp/raft's
// goFunc and routinesGroup and etcd's GoAttach do: every goroutine a
// component starts goes through its Group's Go, and the component's Close
// ends their context and waits for every one.
package routines

import (
	"context"
	"sync"
	"time"
)

// Group is the goroutines of one component.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New is a group whose context ends at Cancel.
func New() *Group {
	g := &Group{}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g
}

// Context ends when the group is cancelled.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn on a goroutine of the group; fn must return once the
// group's context ends. A goroutine of the group may call Go at any
// time; anyone else only before Wait.
func (g *Group) Go(fn func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
}

// Every runs fn each period until the group's context ends.
func (g *Group) Every(period time.Duration, fn func()) {
	g.Go(func(ctx context.Context) {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	})
}

// Cancel ends the group's context.
func (g *Group) Cancel() { g.cancel() }

// Wait returns once every goroutine of the group has returned.
func (g *Group) Wait() { g.wg.Wait() }

// Stop is Cancel, then Wait.
func (g *Group) Stop() {
	g.Cancel()
	g.Wait()
}
