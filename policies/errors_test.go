package policies

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	const dir = "testdata/invalid/"
	tests := []struct {
		name  string
		paths []string
		want  string // a line of the error, from file:line:col on
	}{
		{
			name:  "unknown key",
			paths: []string{dir + "unknown_key.hcl"},
			want: dir + `unknown_key.hcl:3:3: agent.prot: unknown key; valid keys: address, exec, id, meta, name, port, state_dir, tags; ` +
				`did you mean "port"?`,
		},
		{
			name:  "wrong type",
			paths: []string{dir + "wrong_type.hcl"},
			want:  dir + `wrong_type.hcl:3:3: agent.port: must be a number, got string "abc"`,
		},
		{
			name:  "bad duration",
			paths: []string{dir + "bad_duration.hcl"},
			want:  dir + `bad_duration.hcl:6:3: health.heartbeat_interval: invalid duration "5x": use a number and a unit, e.g. "30s", "5m"`,
		},
		{
			name:  "fleet reports inside the policy prefix",
			paths: []string{dir + "fleet_prefix_overlap.hcl"},
			want: dir + `fleet_prefix_overlap.hcl:5:3: consul.fleet_prefix: the fleet reports ("sidecar/fleet/") and the fleet ` +
				`policies ("sidecar/") share a KV prefix: every report written would wake the policy watch of every sidecar; ` +
				`give them separate prefixes, e.g. "sidecar/fleet/" and "sidecar/policies/"`,
		},
		{
			name:  "fleet prefix with a leading slash",
			paths: []string{dir + "fleet_prefix_slash.hcl"},
			want: dir + `fleet_prefix_slash.hcl:4:3: consul.fleet_prefix: invalid Consul KV prefix "/sidecar/fleet/": write it ` +
				`without a leading slash or spaces, e.g. "sidecar/fleet/"`,
		},
		{
			name:  "missing agent name points at the agent block",
			paths: []string{dir + "missing_name.hcl"},
			want:  dir + `missing_name.hcl:3:1: agent.name: required: the agent's Consul service name, e.g. agent { name = "writer" }`,
		},
		{
			name:  "missing agent block points at the file start",
			paths: []string{dir + "no_agent.hcl"},
			want:  dir + `no_agent.hcl:1:1: agent.name: required`,
		},
		{
			name:  "duplicate singleton across files",
			paths: []string{dir + "duplicate_agent"},
			want: dir + `duplicate_agent/b.hcl:5:1: agent: duplicate agent block; also defined at ` +
				dir + `duplicate_agent/a.hcl:1:1`,
		},
		{
			name:  "duplicate notify label across files",
			paths: []string{dir + "duplicate_notify"},
			want: dir + `duplicate_notify/b.hcl:1:1: notify.ops: duplicate notify block "ops"; also defined at ` +
				dir + `duplicate_notify/a.hcl:5:1`,
		},
		{
			name:  "duplicate model label across files",
			paths: []string{dir + "duplicate_model"},
			want: dir + `duplicate_model/b.hcl:3:1: model.gpt-4o: duplicate model block "gpt-4o"; also defined at ` +
				dir + `duplicate_model/a.hcl:5:1: model labels must be unique across all files`,
		},
		{
			name:  "duplicate gateway block across files",
			paths: []string{dir + "duplicate_model"},
			want: dir + `duplicate_model/c.hcl:1:1: gateway: duplicate gateway block; also defined at ` +
				dir + `duplicate_model/b.hcl:1:1: only one is allowed, merge them`,
		},
		{
			name:  "unknown notify reference",
			paths: []string{dir + "unknown_notify.hcl"},
			want:  dir + `unknown_notify.hcl:6:3: health.notify: no notify block named "opz"; defined: ops`,
		},
		{
			name:  "non-loopback listen address without allow_remote",
			paths: []string{dir + "listen_remote.hcl"},
			want: dir + `listen_remote.hcl:6:3: listen.address: "0.0.0.0:7070" is not a loopback address: set allow_remote = ` +
				`true in the listen block (and a token) to expose the control API beyond this host`,
		},
		{
			name:  "empty listen host means every interface",
			paths: []string{dir + "listen_all_interfaces.hcl"},
			want:  dir + `listen_all_interfaces.hcl:6:3: listen.address: ":7070" is not a loopback address`,
		},
		{
			name:  "bad webhook URL",
			paths: []string{dir + "bad_webhook.hcl"},
			want:  dir + `bad_webhook.hcl:6:3: notify.ops.webhook: must be an absolute http or https URL`,
		},
		{
			name:  "bad probe URL",
			paths: []string{dir + "bad_probe_url.hcl"},
			want:  dir + `bad_probe_url.hcl:7:5: health.probe.url: must be an absolute http or https URL`,
		},
		{
			name:  "syntax error",
			paths: []string{dir + "syntax_error.hcl"},
			want:  dir + `syntax_error.hcl:3:10: Invalid expression`,
		},
		{
			name:  "same key twice in a block",
			paths: []string{dir + "duplicate_key.hcl"},
			want:  dir + `duplicate_key.hcl:3:3: Attribute redefined: The argument "name" was already set`,
		},
		{
			name:  "unknown log level",
			paths: []string{dir + "log_level.hcl"},
			want:  dir + `log_level.hcl:5:3: log.level: must be trace, debug, info, warn or error, got "loud"`,
		},
		{
			name:  "unknown block type",
			paths: []string{dir + "unknown_block.hcl"},
			want: dir + `unknown_block.hcl:5:1: breakr: unknown block type "breakr"; valid block types: ` +
				`agent, breaker, budget, consul, gateway, health, ingress, listen, log, model, notify, tls, tracing, upstream; did you mean "breaker"?`,
		},
		{
			name:  "deregister_critical_after below Consul's minimum",
			paths: []string{dir + "deregister_short.hcl"},
			want: dir + `deregister_short.hcl:6:3: consul.deregister_critical_after: must be at least 1m ` +
				`(Consul's minimum is 1m), got "30s"`,
		},
		{
			name:  "block written as an attribute",
			paths: []string{dir + "exec_attribute.hcl"},
			want:  dir + `exec_attribute.hcl:3:3: agent.exec: exec is a block, not an attribute`,
		},
		{
			name:  "missing exec command points at the exec block",
			paths: []string{dir + "exec_no_command.hcl"},
			want:  dir + `exec_no_command.hcl:4:3: agent.exec.command: required`,
		},
		{
			name:  "unknown restart policy",
			paths: []string{dir + "bad_restart.hcl"},
			want:  dir + `bad_restart.hcl:5:5: agent.exec.restart: must be one of "always", "on-failure", "never", got "sometimes"`,
		},
		{
			name:  "invalid service name",
			paths: []string{dir + "bad_name.hcl"},
			want:  dir + `bad_name.hcl:2:3: agent.name: "my_agent" is not a valid Consul service name`,
		},
		{
			name:  "port out of range",
			paths: []string{dir + "bad_port.hcl"},
			want:  dir + `bad_port.hcl:3:3: agent.port: must be between 0 and 65535, got 70000`,
		},
		{
			name:  "no missed heartbeats allowed",
			paths: []string{dir + "missed_zero.hcl"},
			want:  dir + `missed_zero.hcl:6:3: health.missed_heartbeats: must be at least 1, got 0`,
		},
		{
			name:  "variable reference",
			paths: []string{dir + "variable.hcl"},
			want:  dir + `variable.hcl:2:10: agent.name: Variables not allowed`,
		},
		{
			name:  "notify block without a name",
			paths: []string{dir + "notify_no_label.hcl"},
			want:  dir + `notify_no_label.hcl:5:1: notify: a notify block takes exactly one label, its name`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)

			cfg, err := Load(tt.paths...)

			if cfg != nil {
				t.Errorf("got config %+v, want nil", cfg)
			}
			var diags Diagnostics
			if !errors.As(err, &diags) {
				t.Fatalf("got error %T %v, want Diagnostics", err, err)
			}
			if !hasLineWithPrefix(err.Error(), tt.want) {
				t.Errorf("got\n%s\nwant a line starting with\n%s", err, tt.want)
			}
		})
	}
}

// hasLineWithPrefix reports whether one line of text starts with prefix.
func hasLineWithPrefix(text, prefix string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

func TestLoadReportsEveryError(t *testing.T) {
	clearConsulEnv(t)
	const file = "testdata/invalid/many_errors.hcl"

	_, err := Load(file)

	var got Diagnostics
	if !errors.As(err, &got) {
		t.Fatalf("got error %T %v, want Diagnostics", err, err)
	}
	want := Diagnostics{
		{File: file, Line: 4, Column: 3, Key: "agent.prot",
			Message: `unknown key; valid keys: address, exec, id, meta, name, port, state_dir, tags; did you mean "port"?`},
		{File: file, Line: 8, Column: 3, Key: "health.heartbeat_interval",
			Message: `invalid duration "5x": use a number and a unit, e.g. "30s", "5m"`},
		{File: file, Line: 12, Column: 3, Key: "listen.address",
			Message: `"0.0.0.0:7070" is not a loopback address: set allow_remote = true in the listen block ` +
				`(and a token) to expose the control API beyond this host`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDiagnosticError(t *testing.T) {
	tests := []struct {
		name string
		d    Diagnostic
		want string
	}{
		{
			name: "full position",
			d:    Diagnostic{File: "sidecar.hcl", Line: 12, Column: 3, Key: "health.heartbeat_interval", Message: "bad"},
			want: "sidecar.hcl:12:3: health.heartbeat_interval: bad",
		},
		{
			name: "whole file",
			d:    Diagnostic{File: "conf.d", Message: "directory contains no *.hcl files"},
			want: "conf.d: directory contains no *.hcl files",
		},
		{
			name: "no key",
			d:    Diagnostic{File: "a.hcl", Line: 1, Column: 7, Message: "Invalid expression"},
			want: "a.hcl:1:7: Invalid expression",
		},
		{
			name: "from the environment",
			d:    Diagnostic{Key: "consul.address", Message: "bad"},
			want: "consul.address: bad",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	joined := Diagnostics{tests[0].d, tests[1].d}.Error()
	if want := tests[0].want + "\n" + tests[1].want; joined != want {
		t.Errorf("Diagnostics.Error: got %q, want %q", joined, want)
	}
}

func TestDidYouMean(t *testing.T) {
	options := []string{"address", "exec", "id", "meta", "name", "port", "tags"}
	tests := []struct {
		name string
		want string
	}{
		{"prot", `; did you mean "port"?`},
		{"adress", `; did you mean "address"?`},
		{"Name", `; did you mean "name"?`},
		{"timeout", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := didYouMean(tt.name, options); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListenTokenRules(t *testing.T) {
	for _, tc := range []struct {
		listen, want string
	}{
		{`address = "0.0.0.0:7070"
  allow_remote = true`, `listen.address: "0.0.0.0:7070" is not a loopback address, so the control API needs a token`},
		{`token = "short"`, `listen.token: must be at least 16 characters`},
		{`address = "0.0.0.0:7070"
  allow_remote = true
  token = "0123456789abcdef0123"
  token_scope = "mutating"`, `listen.token_scope: "mutating" is only for a loopback control API`},
		{`token = "0123456789abcdef0123"
  token_scope = "some"`, `listen.token_scope: must be "all" or "mutating", got "some"`},
	} {
		path := filepath.Join(t.TempDir(), "s.hcl")
		src := "agent {\n  name = \"w\"\n}\nlisten {\n  " + tc.listen + "\n}\n"
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.listen, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdef0123") {
			t.Errorf("the token appears in an error: %v", err)
		}
	}
	// A remote control API with a token loads
	path := filepath.Join(t.TempDir(), "ok.hcl")
	_ = os.WriteFile(path, []byte("agent {\n  name = \"w\"\n}\nlisten {\n  address = \"0.0.0.0:7070\"\n  allow_remote = true\n  token = \"0123456789abcdef0123\"\n}\n"), 0o600)
	if cfg, err := Load(path); err != nil || cfg.Listen.TokenScope != TokenAll || cfg.Summary()["listen"].(map[string]any)["token"] != redacted {
		t.Fatalf("%v %+v", err, cfg)
	}
}

func TestTLSCAFileIsChecked(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	for file, want := range map[string]string{
		filepath.Join(dir, "missing.pem"): "tls.ca_file: cannot read",
		notPEM:                            "tls.ca_file: " + strconvQuote(notPEM) + " holds no PEM certificate",
	} {
		path := filepath.Join(dir, "s.hcl")
		_ = os.WriteFile(path, []byte("agent {\n  name = \"w\"\n}\ntls {\n  ca_file = "+strconvQuote(file)+"\n}\n"), 0o600)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "s.hcl:5:3") {
			t.Errorf("%s: %v, want %q at s.hcl:5:3", file, err, want)
		}
	}
}

func strconvQuote(s string) string { return `"` + s + `"` }

func TestExecUserMustExist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.hcl")
	_ = os.WriteFile(path, []byte("agent {\n  name = \"w\"\n  exec {\n    command = [\"true\"]\n    user = \"no-such-user-x9\"\n  }\n}\n"), 0o600)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), `s.hcl:5:5: agent.exec.user: no user "no-such-user-x9" on this host`) {
		t.Fatalf("%v", err)
	}
}
