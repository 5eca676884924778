package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeLocal(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "local.hcl")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func src(name, body string) Source {
	return Source{Name: "consul:sidecar/policies/" + name, Data: []byte(body)}
}

// Defaults < fleet policies < per-service policies < local files.
func TestPolicyLayersOverrideByLabel(t *testing.T) {
	fleet := []Source{src("breakers.hcl", `
breaker "default" {
  consecutive_failures = 5
}
breaker "strict" {
  consecutive_failures = 2
}
upstream "search" {
  url = "http://127.0.0.1:9101"
  breaker = "strict"
}`)}
	service := []Source{src("service/writer/breakers.hcl", `
breaker "default" {
  consecutive_failures = 4
}`)}
	local := writeLocal(t, "agent {\n  name = \"writer\"\n}\n")

	cfg, err := LoadWithPolicies(fleet, nil, local)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Breakers["default"].ConsecutiveFailures; got != 5 {
		t.Fatalf("fleet policy: default breaker trips after %d, want 5", got)
	}
	cfg, err = LoadWithPolicies(fleet, service, local)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Breakers["default"].ConsecutiveFailures; got != 4 {
		t.Fatalf("service policy: default breaker trips after %d, want 4 (service over fleet)", got)
	}
	if got := cfg.Breakers["strict"].ConsecutiveFailures; got != 2 || cfg.Upstreams["search"].Breaker != "strict" {
		t.Fatalf("fleet blocks not overridden must stay: %+v %+v", cfg.Breakers["strict"], cfg.Upstreams["search"])
	}
	override := writeLocal(t, "agent {\n  name = \"writer\"\n}\nbreaker \"default\" {\n  open_for = \"9s\"\n}\n")
	cfg, err = LoadWithPolicies(fleet, service, override)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Breakers["default"]
	if b.ConsecutiveFailures != 3 || b.OpenFor.String() != "9s" {
		t.Fatalf("a local block replaces the policy's whole block (defaults for what it leaves out): %+v", b)
	}
	if !strings.Contains(strings.Join(cfg.Sources, " "), "consul:sidecar/policies/breakers.hcl") {
		t.Fatalf("sources lack the policies: %v", cfg.Sources)
	}
}

func TestPolicyLayerErrorsArePositioned(t *testing.T) {
	local := writeLocal(t, "agent {\n  name = \"writer\"\n}\n")
	cases := []struct {
		name  string
		fleet []Source
		want  []string
	}{
		{"a singleton block", []Source{src("bad.hcl", "agent {\n  name = \"x\"\n}\n")},
			[]string{"consul:sidecar/policies/bad.hcl:1:1", "only breaker, upstream, model and notify blocks", "not agent"}},
		{"an attribute at the top", []Source{src("bad.hcl", "x = 1\n")},
			[]string{"consul:sidecar/policies/bad.hcl:1:1", "not x"}},
		{"the same label twice in one layer", []Source{
			src("a.hcl", "breaker \"default\" {\n  consecutive_failures = 4\n}\n"),
			src("b.hcl", "breaker \"default\" {\n  consecutive_failures = 6\n}\n")},
			[]string{"consul:sidecar/policies/b.hcl:1:1", `duplicate breaker block "default"`}},
		{"a bad value", []Source{src("bad.hcl", "breaker \"default\" {\n  open_for = \"5x\"\n}\n")},
			[]string{"consul:sidecar/policies/bad.hcl:2:3", "open_for"}},
		{"not HCL", []Source{src("bad.hcl", "breaker {{{\n")},
			[]string{"consul:sidecar/policies/bad.hcl:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadWithPolicies(tc.fleet, nil, local)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValidatePolicies(t *testing.T) {
	good := []Source{src("a.hcl", "breaker \"strict\" {\n  consecutive_failures = 2\n}\nupstream \"search\" {\n  url = \"http://127.0.0.1:9\"\n  breaker = \"strict\"\n}\n")}
	if err := ValidatePolicies(good); err != nil {
		t.Fatalf("valid policies rejected: %v", err)
	}
	bad := []Source{src("a.hcl", "upstream \"search\" {\n  url = \"http://127.0.0.1:9\"\n  breaker = \"nope\"\n}\n")}
	err := ValidatePolicies(bad)
	if err == nil || !strings.Contains(err.Error(), "consul:sidecar/policies/a.hcl:3:3") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("an unknown breaker must be reported at its line: %v", err)
	}
}
