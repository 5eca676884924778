package sidecar

import (
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar/health"
)

// A recovery found while an isolation is still being dispatched (the
// watcher's notifications are slow) is dispatched after it, and the
// heartbeat that found it does not wait for the isolation's notifications.
func TestTransitionsAreDispatchedInTheOrderTheTrackerMadeThem(t *testing.T) {
	var q transitionQueue
	var got []health.TransitionKind
	inDispatch, release := make(chan struct{}), make(chan struct{})
	dispatch := func(trs []health.Transition) {
		for _, tr := range trs {
			got = append(got, tr.Kind)
			if tr.Kind == health.Isolated {
				close(inDispatch)
				<-release // notifying operations takes a while
			}
		}
	}

	// Given the watcher dispatching an isolation
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		q.run(func() []health.Transition { return []health.Transition{{Kind: health.Isolated}} }, dispatch)
	}()
	<-inDispatch

	// When a heartbeat recovers the agent meanwhile, its call returns at once
	beatDone := make(chan int)
	go func() {
		beatDone <- q.run(func() []health.Transition { return []health.Transition{{Kind: health.Recovered}} }, dispatch)
	}()
	select {
	case n := <-beatDone:
		if n != 1 {
			t.Fatalf("run returned %d transitions made, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat waited for the isolation's dispatch")
	}

	// Then the recovery is dispatched after the isolation, by the watcher
	close(release)
	<-watcherDone
	if len(got) != 2 || got[0] != health.Isolated || got[1] != health.Recovered {
		t.Fatalf("dispatched %v, want the isolation, then the recovery", got)
	}
}

// A dispatch that panics does not stop later transitions from being
// dispatched.
func TestTransitionsAfterAPanickingDispatch(t *testing.T) {
	var q transitionQueue
	func() {
		defer func() { _ = recover() }()
		q.run(func() []health.Transition { return []health.Transition{{Kind: health.Isolated}} },
			func([]health.Transition) { panic("notifier bug") })
	}()
	var got []health.Transition
	q.run(func() []health.Transition { return []health.Transition{{Kind: health.Recovered}} },
		func(trs []health.Transition) { got = append(got, trs...) })
	if len(got) != 1 || got[0].Kind != health.Recovered {
		t.Fatalf("dispatched %v after a panic, want the recovery", got)
	}
}
