package sidecar

import (
	"context"
	"sync"
)

// taskGroup is a set of goroutines stopped together: Stop cancels the
// context they were given and waits for every one of them. Run puts each
// goroutine it starts in a group and stops the groups in the shutdown
// order, so it returns only once all of them have.
type taskGroup struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newTaskGroup returns a group and the context its goroutines run under,
// done when the group is stopped.
func newTaskGroup() (context.Context, *taskGroup) {
	ctx, cancel := context.WithCancel(context.Background())
	return ctx, &taskGroup{cancel: cancel}
}

// Go runs f in a goroutine of the group.
func (g *taskGroup) Go(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// Stop cancels the group's context and waits for its goroutines. It is
// safe to call more than once.
func (g *taskGroup) Stop() {
	g.cancel()
	g.wg.Wait()
}
