package policies

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeHCL writes src to a file of its own and returns its path.
func writeHCL(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidecar.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The agent probes' keys: health.liveness_after and listen.probe_address,
// with their defaults and their summary.
func TestAgentProbeKeys(t *testing.T) {
	for _, tc := range []struct {
		name          string
		blocks        string
		livenessAfter time.Duration
		probeAddress  string
	}{
		{"defaults: fail as soon as isolated, no probe listener", "", 0, ""},
		{"set", "listen {\n  probe_address = \"0.0.0.0:7071\"\n}\nhealth {\n  liveness_after = \"2m\"\n}\n",
			2 * time.Minute, "0.0.0.0:7071"},
		{"zero is allowed", "health {\n  liveness_after = \"0s\"\n}\n", 0, ""},
		{"port 0 picks a free port, beside the control listener's", "listen {\n  probe_address = \"127.0.0.1:0\"\n}\n", 0, "127.0.0.1:0"},
		{"a probe listener on every interface needs no allow_remote or token",
			"listen {\n  address = \"127.0.0.1:7070\"\n  probe_address = \"[::]:7071\"\n}\n", 0, "[::]:7071"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConsulEnv(t)
			t.Setenv(envSidecarToken, "")
			cfg, err := Load(writeHCL(t, "agent {\n  name = \"w\"\n}\n"+tc.blocks))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Health.LivenessAfter; got != tc.livenessAfter {
				t.Errorf("health.liveness_after: got %s, want %s", got, tc.livenessAfter)
			}
			if got := cfg.Listen.ProbeAddress; got != tc.probeAddress {
				t.Errorf("listen.probe_address: got %q, want %q", got, tc.probeAddress)
			}
			s := cfg.Summary()
			if got := s["health"].(map[string]any)["liveness_after"]; got != tc.livenessAfter.String() {
				t.Errorf("summary health.liveness_after: got %v, want %s", got, tc.livenessAfter)
			}
			if got := s["listen"].(map[string]any)["probe_address"]; got != tc.probeAddress {
				t.Errorf("summary listen.probe_address: got %v, want %q", got, tc.probeAddress)
			}
		})
	}
}

func TestAgentProbeKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks string
		want   string // from the line number on
	}{
		{"negative liveness_after", "health {\n  liveness_after = \"-1s\"\n}",
			`7:3: health.liveness_after: must not be negative, got "-1s"`},
		{"liveness_after not a duration", "health {\n  liveness_after = \"soon\"\n}",
			`7:3: health.liveness_after: invalid duration "soon": use a number and a unit, e.g. "30s", "5m"`},
		{"probe_address without a port", "listen {\n  probe_address = \"0.0.0.0\"\n}",
			`7:3: listen.probe_address: invalid address "0.0.0.0": not of the form host:port; use host:port, e.g. "0.0.0.0:7071"`},
		{"probe_address the control listener's", "listen {\n  probe_address = \"127.0.0.1:7070\"\n}",
			`7:3: listen.probe_address: "127.0.0.1:7070" overlaps listen.address "127.0.0.1:7070": give the probe listener its own port, e.g. "0.0.0.0:7071"`},
		{"probe_address on every interface at the ingress's port",
			"ingress {\n  address = \"127.0.0.1:7080\"\n}\nlisten {\n  probe_address = \"0.0.0.0:7080\"\n}",
			`10:3: listen.probe_address: "0.0.0.0:7080" overlaps ingress.address "127.0.0.1:7080": give the probe listener its own port, e.g. "0.0.0.0:7071"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConsulEnv(t)
			path := writeHCL(t, "agent {\n  name = \"w\"\n  port = 8081\n}\n\n"+tc.blocks+"\n")
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			want := path + ":" + tc.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got  %v\nwant %s", err, want)
			}
		})
	}
}

// A change of the probe listener's address needs a restart, as the rest
// of the listen block; liveness_after applies at once.
func TestAgentProbeKeysReload(t *testing.T) {
	prev := reloadBase()
	next := copyConfig(prev)
	next.Listen.ProbeAddress = "0.0.0.0:7071"
	next.Health.LivenessAfter = time.Minute
	got, restart := KeepRestartOnly(prev, next)
	if !reflect.DeepEqual(restart, []string{"listen"}) {
		t.Errorf("restart required: got %q, want [listen]", restart)
	}
	if got.Listen.ProbeAddress != "" || got.Health.LivenessAfter != time.Minute {
		t.Errorf("applied: probe_address %q, liveness_after %s; want the running \"\" and the new 1m0s",
			got.Listen.ProbeAddress, got.Health.LivenessAfter)
	}
}
