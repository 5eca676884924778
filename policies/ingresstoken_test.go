package policies

import (
	"encoding/json"
	"strings"
	"testing"
)

const testIngressToken = "fleet-ingress-token-0123456789"

// An upstream's ingress_token is read from the environment of a local
// file, kept out of status and of every error, and checked like the
// ingress.token it must equal.
func TestUpstreamIngressToken(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_INGRESS_TOKEN", testIngressToken)
	const agent = "agent {\n  name = \"dispatcher\"\n}\n"

	// Given a local file that reads the token from the environment
	cfg, err := Load(writeLocal(t, agent+"upstream \"writers\" {\n  ingress_token = env(\"SIDECAR_TEST_INGRESS_TOKEN\")\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams["writers"]; got.IngressToken != testIngressToken || got.Service != "writers" {
		t.Fatalf("upstream: %+v", got)
	}
	// Then status shows that it is set, never its value
	summary, _ := json.Marshal(cfg.Summary())
	if strings.Contains(string(summary), testIngressToken) {
		t.Fatalf("the summary shows the token: %s", summary)
	}
	if got := cfg.Summary()["upstreams"].(map[string]any)["writers"].(map[string]any)["ingress_token"]; got != redacted {
		t.Fatalf("ingress_token in the summary: %v, want %q", got, redacted)
	}
	if len(cfg.Warnings()) != 0 {
		t.Fatalf("warnings: %v", cfg.Warnings())
	}

	// A value no ingress.token can have, or of the wrong type, is refused
	// at its position without being shown.
	for _, tc := range []struct{ value, want string }{
		{`"short s3cret"`, `local.hcl:5:3: upstream.writers.ingress_token: must be at least 16 characters`},
		{`"with-a-line-break-s3cret\n"`, `upstream.writers.ingress_token: must be at least 16 characters without spaces or line breaks`},
		{`["list-s3cret-0123456789"]`, `upstream.writers.ingress_token: must be a string`},
	} {
		_, err := Load(writeLocal(t, agent+"upstream \"writers\" {\n  ingress_token = "+tc.value+"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.value, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the token: %v", err)
		}
	}

	// An unset variable leaves the upstream without a token, and says so
	cfg, err = Load(writeLocal(t, agent+"upstream \"writers\" {\n  ingress_token = env(\"SIDECAR_TEST_UNSET\")\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], `upstream "writers": ingress_token is set but empty`) {
		t.Fatalf("warnings: %q", w)
	}
	if cfg.Upstreams["writers"].IngressToken != "" {
		t.Fatal("an empty token was kept")
	}
}

// The agent_port meta marks a sidecar's ingress, to which callers send
// their token: an agent cannot claim it.
func TestAgentMetaCannotClaimAnIngress(t *testing.T) {
	_, err := Load(writeLocal(t, "agent {\n  name = \"w\"\n  meta = { agent_port = \"8081\" }\n}\n"))
	if err == nil || !strings.Contains(err.Error(), `agent.meta: key "agent_port" is set by the sidecar`) {
		t.Fatalf("got %v", err)
	}
}

// A policy from Consul KV cannot make a sidecar send a local ingress token
// anywhere: it cannot read the environment, and the local block replaces
// a policy's block of the same label whole, so the policy's url does not
// survive beside the local token.
func TestPolicyCannotRedirectALocalIngressToken(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_INGRESS_TOKEN", testIngressToken)
	local := writeLocal(t, "agent {\n  name = \"dispatcher\"\n}\n"+
		"upstream \"writers\" {\n  ingress_token = env(\"SIDECAR_TEST_INGRESS_TOKEN\")\n}\n")

	exfil := "upstream \"exfil\" {\n  url           = \"http://203.0.113.7\"\n  ingress_token = env(\"SIDECAR_TEST_INGRESS_TOKEN\")\n}\n"
	_, err := LoadWithPolicies([]Source{src("exfil.hcl", exfil)}, nil, local)
	if err == nil || !strings.Contains(err.Error(), "consul:sidecar/policies/exfil.hcl:3:") ||
		!strings.Contains(err.Error(), "env() is only allowed in local files") {
		t.Fatalf("a policy reading the environment: %v", err)
	}
	if strings.Contains(err.Error(), testIngressToken) {
		t.Fatalf("the error shows the token: %v", err)
	}

	takeover := "upstream \"writers\" {\n  url = \"http://203.0.113.7\"\n}\n"
	cfg, err := LoadWithPolicies([]Source{src("takeover.hcl", takeover)}, nil, local)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams["writers"]; got.URL != "" || got.Service != "writers" || got.IngressToken != testIngressToken {
		t.Fatalf("upstream writers: service %q url %q", got.Service, got.URL)
	}
}
