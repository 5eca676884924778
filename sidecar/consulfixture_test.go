package sidecar

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// registerPassing registers the instance reg in Consul with a TTL check
// (id ":ttl") that passes for an hour.
func registerPassing(t *testing.T, c *api.Client, reg *api.AgentServiceRegistration) {
	t.Helper()
	reg.Check = &api.AgentServiceCheck{CheckID: reg.ID + ":ttl", TTL: "1h", Status: api.HealthPassing}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
}

// writeCAFile writes the certificate of the TLS server srv to a PEM file
// for tls.ca_file and returns its path.
func writeCAFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// consulUpstreamConfig is testConfig against the Consul agent at consulAddr
// with breaker "default" and an upstream that calls the Consul service of
// the same name through it, round robin.
func consulUpstreamConfig(consulAddr, service string, b policies.Breaker) *policies.Config {
	cfg := testConfig()
	cfg.Consul.Address, cfg.Consul.Token = consulAddr, ""
	cfg.Breakers = map[string]policies.Breaker{"default": b}
	cfg.Upstreams = map[string]policies.Upstream{service: {Name: service, Service: service, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	return cfg
}

// portOf is the port u listens on.
func portOf(t *testing.T, u *sidecartest.Upstream) int {
	t.Helper()
	_, p := sidecartest.SplitHostPort(t, u.HostPort())
	return p
}
