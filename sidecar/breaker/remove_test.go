package breaker

import (
	"slices"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

func TestSetRemove(t *testing.T) {
	s := NewSet()
	var rec recorder
	s.OnChange(rec.listen)
	cfg := testConfig(func(c *policies.Breaker) { c.OpenFor = time.Minute })
	gone := s.Get("researcher@10.0.0.5:8081", cfg)
	s.Get("researcher@10.0.0.6:8081", cfg)

	removed := s.Remove("researcher@10.0.0.5:8081", "never@there")
	if !slices.Equal(removed, []string{"researcher@10.0.0.5:8081"}) || s.Len() != 1 {
		t.Fatalf("removed %v, %d left", removed, s.Len())
	}
	if _, ok := s.Lookup("researcher@10.0.0.5:8081"); ok {
		t.Fatal("the removed breaker is still there")
	}
	// A call still in flight on the removed breaker tells no listener
	trip(t, gone)
	if got := rec.transitions(); len(got) != 0 {
		t.Fatalf("listeners heard %v from a removed breaker", got)
	}
	// The name starts afresh when used again
	if b := s.Get("researcher@10.0.0.5:8081", cfg); b == gone || b.Snapshot().State != Closed.String() {
		t.Fatal("the name did not start afresh")
	}
}
