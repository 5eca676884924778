package discovery

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestNextIndex(t *testing.T) {
	tests := []struct {
		name      string
		prev, got uint64
		want      uint64
	}{
		{"first answer", 0, 42, 42},
		{"moved on", 42, 57, 57},
		{"unchanged after the wait", 42, 42, 42},
		{"went backwards: Consul restarted", 42, 7, 0},
		{"zero from Consul", 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextIndex(tt.prev, tt.got); got != tt.want {
				t.Errorf("nextIndex(%d, %d) = %d, want %d", tt.prev, tt.got, got, tt.want)
			}
		})
	}
}

func TestWatchBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 200 * time.Millisecond, 250 * time.Millisecond},
		{2, 400 * time.Millisecond, 500 * time.Millisecond},
		{5, 3200 * time.Millisecond, 4 * time.Second},
		{6, 4 * time.Second, 5 * time.Second},
		{100, 4 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if got := watchBackoff(tt.n); got <= tt.min || got > tt.max {
				t.Fatalf("watchBackoff(%d) = %s, want in (%s, %s]", tt.n, got, tt.min, tt.max)
			}
		}
	}
}

func TestInstancesOfKeepsWarningDropsCritical(t *testing.T) {
	entry := func(id string, statuses ...string) *api.ServiceEntry {
		e := &api.ServiceEntry{
			Node:    &api.Node{Node: "n1", Address: "10.0.0.9"},
			Service: &api.AgentService{ID: id, Service: "s", Port: 1},
		}
		for _, st := range statuses {
			e.Checks = append(e.Checks, &api.HealthCheck{Status: st})
		}
		return e
	}
	got := instancesOf([]*api.ServiceEntry{
		entry("d-warning", api.HealthPassing, api.HealthWarning),
		entry("c-critical", api.HealthPassing, api.HealthCritical),
		entry("b-no-checks"),
		entry("a-passing", api.HealthPassing, api.HealthPassing),
		entry("e-maintenance", api.HealthMaint),
		{Node: &api.Node{Node: "n1"}}, // no service: ignored
	})
	var ids []string
	for _, in := range got {
		ids = append(ids, in.ID)
		if in.Address != "10.0.0.9" {
			t.Errorf("%s address = %q, want the node's", in.ID, in.Address)
		}
	}
	want := []string{"a-passing", "b-no-checks", "d-warning"}
	if !slices.Equal(ids, want) {
		t.Errorf("instances = %v, want %v", ids, want)
	}
}
