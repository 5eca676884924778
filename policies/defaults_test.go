package policies

import (
	"reflect"
	"strings"
	"testing"
)

// With an exec block, an isolated agent is restarted unless the file says
// otherwise.
func TestRestartOnIsolationDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want bool
	}{
		{"unset: restarted", "", true},
		{"true", "    restart_on_isolation = true\n", true},
		{"false: left isolated", "    restart_on_isolation = false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConsulEnv(t)
			cfg, err := Load(writeHCL(t, "agent {\n  name = \"w\"\n  exec {\n    command = [\"agent\"]\n"+tc.line+"  }\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Agent.Exec.RestartOnIsolation; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if got := cfg.Summary()["agent"].(map[string]any)["exec"].(map[string]any)["restart_on_isolation"]; got != tc.want {
				t.Errorf("summary: got %v, want %v", got, tc.want)
			}
		})
	}
}

// health.notify unset tells every notify block, in name order; [] tells
// none, and the configuration warns that isolations notify nobody.
func TestHealthNotifyDefault(t *testing.T) {
	const blocks = "notify \"pager\" {\n  webhook = \"https://pager.example.com/x\"\n}\n" +
		"notify \"ops\" {\n  webhook = \"https://hooks.example.com/x\"\n}\n"
	const warning = "health.notify is []: isolations notify nobody, although notify blocks are defined (ops, pager); " +
		"remove health.notify to notify every one of them, or name the ones to notify"
	for _, tc := range []struct {
		name     string
		src      string
		want     []string
		warnings []string
	}{
		{"unset: every notify block, by name", blocks, []string{"ops", "pager"}, nil},
		{"named", "health {\n  notify = [\"pager\"]\n}\n" + blocks, []string{"pager"}, nil},
		{"[]: none, with a warning", "health {\n  notify = []\n}\n" + blocks, []string{}, []string{warning}},
		{"unset without notify blocks: none, no warning", "", []string{}, nil},
		{"[] without notify blocks: none, no warning", "health {\n  notify = []\n}\n", []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConsulEnv(t)
			cfg, err := Load(writeHCL(t, "agent {\n  name = \"w\"\n}\n"+tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Health.Notify; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("health.notify: got %q, want %q", got, tc.want)
			}
			if got := cfg.Summary()["health"].(map[string]any)["notify"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("summary health.notify: got %q, want %q", got, tc.want)
			}
			if got := cfg.Warnings(); !reflect.DeepEqual(got, tc.warnings) {
				t.Errorf("warnings:\ngot  %q\nwant %q", got, tc.warnings)
			}
		})
	}
}

// A notify block of the fleet policies in Consul KV is told too when the
// files leave health.notify unset.
func TestHealthNotifyDefaultTakesFleetPolicies(t *testing.T) {
	clearConsulEnv(t)
	fleet := []Source{{Name: "consul:sidecar/policies/notify.hcl",
		Data: []byte("notify \"fleet-ops\" {\n  webhook = \"https://hooks.example.com/fleet\"\n}\n")}}
	cfg, err := LoadWithPolicies(fleet, nil, writeHCL(t, "agent {\n  name = \"w\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Health.Notify, ","); got != "fleet-ops" {
		t.Errorf("health.notify: got %q, want fleet-ops", got)
	}
}
