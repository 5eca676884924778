package sidecar

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// benchConfig is a sidecar on a free loopback port with the default breaker.
func benchConfig() *policies.Config {
	cfg := policies.Dev()
	cfg.Agent.Name, cfg.Agent.ID = "bench", "bench-1"
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.BenchBreaker()}
	return cfg
}

// runBenchSidecar runs a sidecar with cfg until the benchmark ends and
// returns its control address.
func runBenchSidecar(b *testing.B, cfg *policies.Config) string {
	b.Helper()
	s, err := New(cfg, hclog.NewNullLogger(), Options{Registry: newFakeRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return s.Addr()
}
