package policies

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestSummaryRedactsSecrets(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_CONSUL_TOKEN", "consul-token-secret")
	t.Setenv("SIDECAR_TEST_HOOK_TOKEN", "Bearer hook-token-secret")
	t.Setenv("SIDECAR_TEST_MODEL_KEY", "sk-model-key-secret")
	t.Setenv("SIDECAR_TEST_GATEWAY_TOKEN", "gateway-token-secret")
	cfg, err := Load("testdata/secrets.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	out, err := json.Marshal(cfg.Summary())
	if err != nil {
		t.Fatalf("marshal summary: %v", err)
	}

	for _, secret := range []string{
		"consul-token-secret", "hook-token-secret", "literal-header-secret",
		"hook-user", "hook-pass", "query-secret", "frag-secret",
		"sk-model-key-secret", "gateway-token-secret", "org-header-secret", "sk-ant-literal-secret",
	} {
		if strings.Contains(string(out), secret) {
			t.Errorf("summary contains %q:\n%s", secret, out)
		}
	}

	var got struct {
		Consul struct {
			Token string `json:"token"`
		} `json:"consul"`
		Notify map[string]struct {
			Webhook string            `json:"webhook"`
			Headers map[string]string `json:"headers"`
		} `json:"notify"`
		Models map[string]map[string]any `json:"models"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unmarshal summary: %v", err)
	}
	if got.Consul.Token != "<redacted>" {
		t.Errorf("consul.token: got %q, want <redacted>", got.Consul.Token)
	}
	wantHeaders := map[string]string{"Authorization": "<redacted>", "X-Api-Key": "<redacted>"}
	if h := got.Notify["ops"].Headers; !reflect.DeepEqual(h, wantHeaders) {
		t.Errorf("headers: got %v, want %v", h, wantHeaders)
	}
	if w := got.Notify["ops"].Webhook; w != "https://hooks.example.com/<redacted>" {
		t.Errorf("webhook: got %q, want the path redacted (it may be the secret)", w)
	}
	// A model's api_key shows whether it is set, never what it is; header
	// names stay, their values do not.
	for label, want := range map[string]any{"gpt-4o": "<redacted>", "claude": "<redacted>", "local": nil} {
		if k := got.Models[label]["api_key"]; k != want {
			t.Errorf("models.%s.api_key: got %#v, want %#v", label, k, want)
		}
	}
	wantModelHeaders := map[string]any{"OpenAI-Organization": "<redacted>", "X-Gateway-Token": "<redacted>"}
	if h := got.Models["gpt-4o"]["headers"]; !reflect.DeepEqual(h, wantModelHeaders) {
		t.Errorf("models.gpt-4o.headers: got %v, want %v", h, wantModelHeaders)
	}
	if _, ok := got.Models["local"]["api_key"]; ok {
		t.Errorf("models.local: api_key present without a key: %v", got.Models["local"])
	}
}

func TestSummary(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_API_KEY", "sk-exec-secret")
	t.Setenv("SIDECAR_TEST_CONSUL_TOKEN", "")
	t.Setenv("SIDECAR_TEST_HOOK_TOKEN", "x")
	cfg, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	out, err := json.Marshal(cfg.Summary())
	if err != nil {
		t.Fatalf("marshal summary: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unmarshal summary: %v", err)
	}

	tests := []struct {
		path string
		want any
	}{
		{"agent.name", "writer"},
		{"agent.port", float64(8081)},
		{"agent.exec.stop_timeout", "20s"},
		{"agent.exec.env.API_KEY", "<redacted>"},
		{"listen.address", "0.0.0.0:7171"},
		{"consul.token", ""}, // no token anywhere: empty, not "<redacted>"
		{"consul.deregister_critical_after", "24h0m0s"},
		{"health.heartbeat_interval", "1m0s"},
		{"health.ttl", "3m10s"},
		{"health.probe.url", "http://127.0.0.1:8081/<redacted>"},
		{"notify.pager.retries", float64(0)},
		{"notify.pager.timeout", "10s"},
		{"breakers.default.failure_statuses", []any{float64(429), "5xx"}}, // as written, duplicates merged
		{"breakers.default.window", "2m0s"},
		{"breakers.strict.failure_statuses", []any{"4xx", float64(503)}},
		{"breakers.strict.slow_call", "0s"},
		{"upstreams.researcher.filter", `Service.Meta.tier == "full"`},
		{"upstreams.researcher.fallback", []any{"researcher-lite", "static"}},
		{"upstreams.researcher.url", ""},
		{"upstreams.static.url", "http://127.0.0.1:9200/api"},
		{"upstreams.static.service", ""},
		{"upstreams.static.tags", []any{}},
		{"upstreams.static.timeout", "5s"},
		{"ingress.address", "0.0.0.0:7080"},
		{"ingress.timeout", "1m30s"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var v any = got
			for _, part := range strings.Split(tt.path, ".") {
				m, ok := v.(map[string]any)
				if !ok {
					t.Fatalf("%s: no object at %q", tt.path, part)
				}
				v = m[part]
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Errorf("got %#v, want %#v", v, tt.want)
			}
		})
	}
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		secrets []string
	}{
		{
			name:    "wrong types of token and header value",
			path:    "testdata/invalid/secret_token.hcl",
			secrets: []string{"s3cret-consul-token", "s3cret-header-value"},
		},
		{
			name:    "bad webhook URL with user information and query",
			path:    "testdata/invalid/secret_url.hcl",
			secrets: []string{"url-s3cret", "hook-user"},
		},
		{
			name:    "upstream URLs with user information, query and fragment",
			path:    "testdata/invalid/secret_upstream_url.hcl",
			secrets: []string{"up-user", "up-s3cret", "query-s3cret", "frag-s3cret", "ftp-user", "ftp-s3cret", "ftp-query"},
		},
		{
			name: "model api_key and header of the wrong type, base URLs with credentials",
			path: "testdata/invalid/secret_model.hcl",
			secrets: []string{"sk-list-s3cret", "hdr-list-s3cret", "key-user", "key-s3cret", "query-s3cret",
				"frag-s3cret", "ftp-user", "ftp-s3cret", "ftp-query"},
		},
		{
			name: "model api_key and header value with line breaks",
			path: "testdata/invalid/secret_model.hcl",
			env: map[string]string{
				"SIDECAR_TEST_MODEL_KEY":     "sk-nl-s3cret\n",
				"SIDECAR_TEST_GATEWAY_TOKEN": "hdr-nl-s3cret\r\nInjected: yes",
			},
			secrets: []string{"sk-nl-s3cret", "hdr-nl-s3cret", "Injected"},
		},
		{
			name:    "header value with a line break",
			path:    "testdata/invalid/secret_url.hcl",
			env:     map[string]string{"SIDECAR_TEST_HOOK_TOKEN": "Bearer hdr-s3cret\nInjected: yes"},
			secrets: []string{"hdr-s3cret", "Injected"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}

			_, err := Load(tt.path)

			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error contains %q:\n%s", s, err)
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"https://hooks.example.com/x", "https://hooks.example.com/x"},
		{"https://u:p@hooks.example.com/x?token=t#f", "https://hooks.example.com/x"},
		{"127.0.0.1:8500", "127.0.0.1:8500"},
		{"u:p@127.0.0.1:8500?t=1", "127.0.0.1:8500"},
		{"http://bad host/", "<redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := redactURL(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
