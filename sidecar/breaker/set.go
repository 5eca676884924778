package breaker

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// Set holds breakers by name (e.g. "researcher@10.0.0.5:8081",
// "agent:writer"), each created on first use. It is safe for concurrent use.
type Set struct {
	now       func() time.Time // the clock of its breakers
	mu        sync.RWMutex
	byName    map[string]*Breaker
	listeners []func(Change)
}

// NewSet returns an empty set.
func NewSet() *Set {
	return NewSetWithClock(time.Now)
}

// NewSetWithClock returns an empty set whose breakers read the time from
// now (see NewWithClock). A nil now is time.Now.
func NewSetWithClock(now func() time.Time) *Set {
	return &Set{now: orNow(now), byName: map[string]*Breaker{}}
}

// Get returns the breaker with this name, created when missing. When it
// exists with different settings it is replaced by a fresh, closed one (the
// listeners hear of it when the old one was not closed); with the same
// settings it keeps its state.
func (s *Set) Get(name string, cfg policies.Breaker) *Breaker {
	want := settle(cfg)
	s.mu.RLock()
	old, ok := s.byName[name]
	s.mu.RUnlock()
	if ok && reflect.DeepEqual(old.cfg, want) {
		return old
	}

	s.mu.Lock()
	old, ok = s.byName[name]
	if ok && reflect.DeepEqual(old.cfg, want) {
		s.mu.Unlock()
		return old
	}
	b := newBreaker(name, want, s.now)
	b.listeners = slices.Clone(s.listeners)
	s.byName[name] = b
	listeners := s.listeners
	s.mu.Unlock()

	if ok {
		if from := old.detach(); from != Closed {
			ch := Change{Name: name, From: from, To: Closed, At: s.now(),
				Reason: "settings changed: the breaker starts afresh"}
			for _, fn := range listeners {
				fn(ch)
			}
		}
	}
	return b
}

// Ensure returns the breaker with this name, created with cfg when
// missing. Unlike Get it leaves an existing breaker as it is, settings
// included: a reload applies new settings with Get.
func (s *Set) Ensure(name string, cfg policies.Breaker) *Breaker {
	if b, ok := s.Lookup(name); ok {
		return b
	}
	return s.Get(name, cfg)
}

// detach stops the breaker from calling its listeners (it is no longer in
// the set, though calls in flight may still finish on it) and returns its
// last state.
func (b *Breaker) detach() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detached = true
	b.listeners = nil
	return b.state
}

// Lookup returns the breaker with this name, if there is one.
func (s *Set) Lookup(name string) (*Breaker, bool) {
	s.mu.RLock()
	b, ok := s.byName[name]
	s.mu.RUnlock()
	return b, ok
}

// Snapshots returns the state of every breaker, sorted by name.
func (s *Set) Snapshots() []Snapshot {
	s.mu.RLock()
	bs := make([]*Breaker, 0, len(s.byName))
	for _, b := range s.byName {
		bs = append(bs, b)
	}
	s.mu.RUnlock()
	out := make([]Snapshot, len(bs))
	for i, b := range bs {
		out[i] = b.Snapshot()
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Retain drops the breakers whose names are not in names (e.g. instances
// gone for good).
func (s *Set) Retain(names map[string]bool) {
	var dropped []*Breaker
	s.mu.Lock()
	for name, b := range s.byName {
		if !names[name] {
			delete(s.byName, name)
			dropped = append(dropped, b)
		}
	}
	s.mu.Unlock()
	for _, b := range dropped {
		b.detach()
	}
}

// OnChange adds a listener to every breaker of the set, present and future.
func (s *Set) OnChange(fn func(Change)) {
	s.mu.Lock()
	s.listeners = append(s.listeners[:len(s.listeners):len(s.listeners)], fn)
	bs := make([]*Breaker, 0, len(s.byName))
	for _, b := range s.byName {
		bs = append(bs, b)
	}
	s.mu.Unlock()
	for _, b := range bs {
		b.OnChange(fn)
	}
}

// Remove drops the named breakers from the set (e.g. those of instances
// gone from discovery); listeners hear nothing more from them. It returns
// the names that were there.
func (s *Set) Remove(names ...string) []string {
	var dropped []*Breaker
	var removed []string
	s.mu.Lock()
	for _, name := range names {
		if b, ok := s.byName[name]; ok {
			delete(s.byName, name)
			dropped = append(dropped, b)
			removed = append(removed, name)
		}
	}
	s.mu.Unlock()
	for _, b := range dropped {
		b.detach()
	}
	return removed
}

// Len is the number of breakers in the set.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byName)
}
