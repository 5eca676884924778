package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A mistyped webhook or probe URL is reported with its place and what is
// wrong, but never with its path, query or user information: a webhook's
// path is often its only secret (Slack, Discord, Teams).
func TestMistypedURLErrorsHideTheSecretPart(t *testing.T) {
	tests := []struct {
		name    string
		block   string // HCL with %s where the URL goes
		key     string
		url     string
		wantURL string // the URL as the error shows it
	}{
		{"webhook without a scheme", "notify \"ops\" {\n  webhook = %q\n}\n", "notify.ops.webhook",
			"hooks.slack.com/services/T000/B000/path-s3cret", `"hooks.slack.com/<redacted>"`},
		{"webhook with a misspelt scheme", "notify \"ops\" {\n  webhook = %q\n}\n", "notify.ops.webhook",
			"htps://hooks.slack.com/services/T000/B000/path-s3cret?token=query-s3cret", `"htps://hooks.slack.com/<redacted>"`},
		{"webhook missing the colon", "notify \"ops\" {\n  webhook = %q\n}\n", "notify.ops.webhook",
			"https//hooks.slack.com/services/path-s3cret", `"https/<redacted>"`},
		{"webhook without a host", "notify \"ops\" {\n  webhook = %q\n}\n", "notify.ops.webhook",
			"https:///services/path-s3cret", `"https:///<redacted>"`},
		{"webhook with user information and no scheme", "notify \"ops\" {\n  webhook = %q\n}\n", "notify.ops.webhook",
			"user-s3cret:pass-s3cret@hooks.example.com/path-s3cret", `"hooks.example.com/<redacted>"`},
		{"probe URL without a scheme", "health {\n  probe {\n    url = %q\n  }\n}\n", "health.probe.url",
			"127.0.0.1:8081/healthz/path-s3cret?key=query-s3cret", `"127.0.0.1:8081/<redacted>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			// Given a file whose URL is mistyped on line 4
			file := filepath.Join(t.TempDir(), "sidecar.hcl")
			body := "agent {\n  name = \"writer\"\n}\n" + fmt.Sprintf(tt.block, tt.url)
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}

			// When it is loaded
			_, err := Load(file)

			// Then the error says where and what, without the secret part
			var diags Diagnostics
			if !errors.As(err, &diags) || len(diags) != 1 {
				t.Fatalf("got %v, want one diagnostic", err)
			}
			msg := err.Error()
			for _, want := range []string{file + ":", tt.key + ": ", "must be an absolute http or https URL", "got " + tt.wantURL} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if diags[0].Line == 0 {
				t.Errorf("error has no line: %+v", diags[0])
			}
			for _, secret := range []string{"path-s3cret", "query-s3cret", "user-s3cret", "pass-s3cret", "services"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error contains %q:\n%s", secret, msg)
				}
			}
		})
	}
}

// The status summary shows a probe URL like a webhook: scheme and host.
func TestSummaryHidesProbePathAndExecArguments(t *testing.T) {
	cfg := Dev()
	cfg.Health.Probe = &Probe{URL: "http://127.0.0.1:8081/healthz/path-s3cret?key=query-s3cret"}
	cfg.Agent.Exec = &Exec{Command: []string{"python3", "agent.py", "--api-key=arg-s3cret"}}

	out, err := json.Marshal(cfg.Summary())
	if err != nil {
		t.Fatal(err)
	}

	for _, secret := range []string{"path-s3cret", "query-s3cret", "arg-s3cret", "agent.py"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("summary contains %q:\n%s", secret, out)
		}
	}
	var got struct {
		Agent struct {
			Exec struct {
				Command []string `json:"command"`
				Args    int      `json:"args"`
			} `json:"exec"`
		} `json:"agent"`
		Health struct {
			Probe struct {
				URL string `json:"url"`
			} `json:"probe"`
		} `json:"health"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Health.Probe.URL != "http://127.0.0.1:8081/<redacted>" {
		t.Errorf("health.probe.url = %q, want the scheme and host only", got.Health.Probe.URL)
	}
	if c := got.Agent.Exec.Command; len(c) != 1 || c[0] != "python3" || got.Agent.Exec.Args != 2 {
		t.Errorf("agent.exec = %+v, want the command name and the count of its arguments", got.Agent.Exec)
	}
}
