package policies

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// clearConsulEnv makes a test independent of the CONSUL_* variables of the
// machine running it (an empty value counts as unset).
func clearConsulEnv(t *testing.T) {
	t.Helper()
	for _, env := range []string{envConsulAddress, envConsulToken, envConsulCACert, envConsulClientCert,
		envConsulClientKey, envConsulTLSServerName,
		envOTelSDKDisabled, envOTelTracesExporter, envOTelProtocol, envOTelTracesProtocol,
		envOTelTracesSampler, envOTelTracesSamplerAr} {
		t.Setenv(env, "")
	}
}

// defaultConfig is the configuration of a file that sets only the agent's
// name: every other value is its default.
func defaultConfig(name string, sources ...string) *Config {
	return &Config{
		Agent:  Agent{Name: name, ID: name, Address: "127.0.0.1"},
		Listen: Listen{Address: "127.0.0.1:7070", TokenScope: TokenAll, MaxConnections: 2048, BodyReadTimeout: time.Minute},
		Consul: Consul{
			Address:                 "127.0.0.1:8500",
			DeregisterCriticalAfter: 72 * time.Hour,
			SyncInterval:            5 * time.Second,
			FleetPrefix:             DefaultFleetPrefix,
		},
		Health: Health{
			HeartbeatInterval: 5 * time.Minute,
			MissedHeartbeats:  2,
			Grace:             30 * time.Second,
			Notify:            []string{},
		},
		Notify:    map[string]Notify{},
		Breakers:  map[string]Breaker{"default": defaultBreaker("default")},
		Upstreams: map[string]Upstream{},
		Models:    map[string]Model{},
		Gateway:   Gateway{MaxRequestBytes: 10 << 20},
		Log:       Log{Level: "info"},
		Tracing:   Tracing{Protocol: TracingHTTP},
		Sources:   sources,
	}
}

func TestLoadFullFile(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_API_KEY", "sk-test")
	t.Setenv("SIDECAR_TEST_CONSUL_TOKEN", "consul-token")
	t.Setenv("SIDECAR_TEST_HOOK_TOKEN", "Bearer hook-token")
	t.Setenv("SIDECAR_TEST_MODEL_KEY", "sk-model")

	got, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	want := &Config{
		Agent: Agent{
			Name:    "writer",
			ID:      "writer-1",
			Address: "10.0.0.5",
			Port:    8081,
			Tags:    []string{"gpu", "eu"},
			Meta:    map[string]string{"team": "research"},
			Exec: &Exec{
				Command:            []string{"python3", "agent.py", "--serve"},
				Env:                map[string]string{"LOG_LEVEL": "debug", "API_KEY": "sk-test"},
				Dir:                "/srv/agent",
				Restart:            RestartOnFailure,
				RestartOnIsolation: false,
				StopTimeout:        20 * time.Second,
				RestartBackoff:     2 * time.Second,
				MaxRestartBackoff:  2 * time.Minute,
			},
		},
		Listen: Listen{Address: "0.0.0.0:7171", AllowRemote: true, Token: "control-token-0123456789", TokenScope: TokenAll,
			AllowedHosts: []string{"researcher.internal"}, MaxConnections: 500, BodyReadTimeout: 30 * time.Second,
			ProbeAddress: "0.0.0.0:7172"},
		Consul: Consul{
			Address:                 "https://consul.internal:8501",
			Token:                   "consul-token",
			DeregisterCriticalAfter: 24 * time.Hour,
			FleetPrefix:             DefaultFleetPrefix,
			SyncInterval:            15 * time.Second,
			CAFile:                  "testdata/consul-tls/ca.pem",
			CertFile:                "testdata/consul-tls/client.pem",
			KeyFile:                 "testdata/consul-tls/client-key.pem",
			TLSServerName:           "server.dc1.consul",
			InsecureSkipVerify:      true,
		},
		Health: Health{
			HeartbeatInterval: time.Minute,
			MissedHeartbeats:  3,
			Grace:             10 * time.Second,
			StallAfter:        30 * time.Minute,
			LivenessAfter:     2 * time.Minute,
			Notify:            []string{"pager"},
			Probe: &Probe{
				URL:      "http://127.0.0.1:8081/healthz",
				Interval: 20 * time.Second,
				Timeout:  2 * time.Second,
			},
		},
		Notify: map[string]Notify{
			"ops": {
				Name:    "ops",
				Webhook: "https://hooks.example.com/agents",
				Headers: map[string]string{"Authorization": "Bearer hook-token"},
				Timeout: 3 * time.Second,
				Retries: 2,
			},
			"pager": {
				Name:    "pager",
				Webhook: "https://pager.example.com/v1/alert",
				Timeout: 10 * time.Second,
				Retries: 0,
			},
		},
		Breakers:  fullBreakers(),
		Upstreams: fullUpstreams(),
		Ingress: &Ingress{
			Address:  "0.0.0.0:7080",
			Breaker:  "strict",
			Timeout:  90 * time.Second,
			Fallback: []string{"researcher-lite"},

			Token:           "ingress-token-0123456789",
			MaxConnections:  4000,
			BodyReadTimeout: 2 * time.Minute,
		},
		Models:  fullModels(),
		Gateway: Gateway{MaxRequestBytes: 2 << 20},
		Log:     Log{Level: "debug", JSON: true},
		Tracing: Tracing{Protocol: TracingHTTP},
		Sources: []string{"testdata/full.hcl"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(full.hcl)\ngot  %+v\nwant %+v", got, want)
	}
	if ttl := got.Health.TTL(); ttl != 3*time.Minute+10*time.Second {
		t.Errorf("TTL: got %s, want 3m10s", ttl)
	}
}

func TestLoadDefaults(t *testing.T) {
	withOptionalBlocks := defaultConfig("writer", "testdata/exec_probe_defaults.hcl")
	withOptionalBlocks.Agent.Exec = &Exec{
		Command:            []string{"node", "agent.js"},
		Restart:            RestartAlways,
		RestartOnIsolation: true,
		StopTimeout:        10 * time.Second,
		RestartBackoff:     time.Second,
		MaxRestartBackoff:  time.Minute,
	}
	withOptionalBlocks.Health.HeartbeatInterval = 100 * time.Millisecond
	withOptionalBlocks.Health.Probe = &Probe{
		URL:      "http://127.0.0.1:8081/healthz",
		Interval: 100 * time.Millisecond, // the heartbeat interval
		Timeout:  5 * time.Second,
	}
	withOptionalBlocks.Listen.Address = "[::1]:7070"

	tests := []struct {
		name string
		path string
		want *Config
	}{
		{"only the agent name", "testdata/minimal.hcl", defaultConfig("writer", "testdata/minimal.hcl")},
		{"commented example spelling out every default", "testdata/sidecar.hcl", defaultConfig("writer", "testdata/sidecar.hcl")},
		{"optional blocks with only their required keys", "testdata/exec_probe_defaults.hcl", withOptionalBlocks},
		{"breaker, upstream and ingress with only their required keys", "testdata/upstream_defaults.hcl", policyDefaults()},
		{"models with only their required keys", "testdata/model_defaults.hcl", modelDefaults()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			got, err := Load(tt.path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDev(t *testing.T) {
	tests := []struct {
		name        string
		addr, token string
		wantAddr    string
		wantToken   string
	}{
		{name: "defaults", wantAddr: "127.0.0.1:8500"},
		{name: "environment", addr: "consul.local:8500", token: "dev-token", wantAddr: "consul.local:8500", wantToken: "dev-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			t.Setenv(envConsulAddress, tt.addr)
			t.Setenv(envConsulToken, tt.token)

			got := Dev()

			want := defaultConfig("agent")
			want.Consul.Address = tt.wantAddr
			want.Consul.Token = tt.wantToken
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestConsulEnvironment(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		env       map[string]string
		wantAddr  string
		wantToken string
	}{
		{
			name:      "file sets nothing: environment applies",
			path:      "testdata/minimal.hcl",
			env:       map[string]string{envConsulAddress: "https://consul.env:8501", envConsulToken: "env-token"},
			wantAddr:  "https://consul.env:8501",
			wantToken: "env-token",
		},
		{
			name:      "file sets values: environment ignored",
			path:      "testdata/consul_set.hcl",
			env:       map[string]string{envConsulAddress: "consul.env:8500", envConsulToken: "env-token"},
			wantAddr:  "10.1.1.1:8500",
			wantToken: "file-token",
		},
		{
			name:      "empty strings in the file count as unset",
			path:      "testdata/consul_empty.hcl",
			env:       map[string]string{envConsulAddress: "consul.env:8500", envConsulToken: "env-token"},
			wantAddr:  "consul.env:8500",
			wantToken: "env-token",
		},
		{
			name:      "env() reads a variable",
			path:      "testdata/consul_env_func.hcl",
			env:       map[string]string{"SIDECAR_TEST_TOKEN_VAR": "from-env-func", envConsulToken: "env-token"},
			wantAddr:  "127.0.0.1:8500",
			wantToken: "from-env-func",
		},
		{
			name:      "env() of an unset variable is empty, so CONSUL_HTTP_TOKEN applies",
			path:      "testdata/consul_env_func.hcl",
			env:       map[string]string{"SIDECAR_TEST_TOKEN_VAR": "", envConsulToken: "env-token"},
			wantAddr:  "127.0.0.1:8500",
			wantToken: "env-token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := Load(tt.path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Consul.Address != tt.wantAddr {
				t.Errorf("address: got %q, want %q", got.Consul.Address, tt.wantAddr)
			}
			if got.Consul.Token != tt.wantToken {
				t.Errorf("token: got %q, want %q", got.Consul.Token, tt.wantToken)
			}
		})
	}
}

func TestConsulAddressFromEnvironmentIsValidated(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv(envConsulAddress, "not an address")

	_, err := Load("testdata/minimal.hcl")

	want := `consul.address: invalid address "not an address": use host:port or http(s)://host:port, ` +
		`e.g. "127.0.0.1:8500" (the value comes from the CONSUL_HTTP_ADDR environment variable)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestLoadDirectory(t *testing.T) {
	clearConsulEnv(t)

	got, err := Load("testdata/split")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	want := defaultConfig("researcher", "testdata/split/10-agent.hcl", "testdata/split/20-health.hcl", "testdata/split/30-notify.hcl")
	want.Agent.Port = 9000
	want.Health.HeartbeatInterval = time.Second
	want.Health.Notify = []string{"ops"}
	want.Notify["ops"] = Notify{Name: "ops", Webhook: "http://127.0.0.1:9999/hook", Timeout: 10 * time.Second, Retries: 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadFilesAndDirectoriesInOrder(t *testing.T) {
	clearConsulEnv(t)

	// Given a file with the agent and a directory of notify blocks,
	got, err := Load("testdata/minimal.hcl", "testdata/notify.d")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	// Then both are merged, and the directory's files are read in name order.
	wantSources := []string{"testdata/minimal.hcl", "testdata/notify.d/ops.hcl", "testdata/notify.d/pager.hcl"}
	if !reflect.DeepEqual(got.Sources, wantSources) {
		t.Errorf("sources: got %v, want %v", got.Sources, wantSources)
	}
	var names []string
	for name := range got.Notify {
		names = append(names, name)
	}
	sort.Strings(names)
	if want := []string{"ops", "pager"}; !reflect.DeepEqual(names, want) {
		t.Errorf("notify: got %v, want %v", names, want)
	}
}

func TestLoadPathErrors(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"no path", nil, "no configuration given: pass a file or a directory of *.hcl files"},
		{"missing file", []string{"testdata/nope.hcl"}, "testdata/nope.hcl: no such file or directory"},
		{"directory without *.hcl files", []string{"testdata/empty"}, "testdata/empty: directory contains no *.hcl files"},
		{
			"every missing path is reported",
			[]string{"testdata/nope.hcl", "testdata/minimal.hcl", "testdata/gone"},
			"testdata/nope.hcl: no such file or directory\ntestdata/gone: no such file or directory",
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
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSchemaListsEveryKey(t *testing.T) {
	// The schema is derived from the file structs; this pins the public
	// key names so a renamed struct tag cannot go unnoticed.
	tests := []struct {
		path string
		want string
	}{
		{"", "agent breaker budget consul gateway health ingress listen log model notify tls tracing upstream"},
		{"agent", "address exec id meta name port state_dir tags"},
		{"budget", "action cost_usd degrade_to models scope sync_every tokens warn_at window"},
		{"agent.exec", "command dir env max_restart_backoff pass_env restart restart_backoff restart_on_isolation stop_timeout user"},
		{"listen", "address allow_remote allowed_hosts body_read_timeout max_connections probe_address token token_scope"},
		{"consul", "address ca_file cert_file deregister_critical_after fleet_prefix insecure_skip_verify key_file policy_prefix " +
			"sync_interval tls_server_name token"},
		{"health", "grace heartbeat_interval liveness_after missed_heartbeats notify probe stall_after"},
		{"health.probe", "interval timeout url"},
		{"notify", "headers retries timeout webhook"},
		{"breaker", "consecutive_failures failure_rate failure_statuses half_open_probes max_open_for min_calls " +
			"open_for slow_call window"},
		{"upstream", "balance breaker fallback filter ingress_token max_concurrent retries service tags timeout url"},
		{"ingress", "address body_read_timeout breaker fallback max_concurrent max_connections timeout token"},
		{"model", "api_key base_url breaker context_fallback degrade_on drop_fields embedding_space fallback " +
			"first_byte_timeout headers max_concurrent max_tokens max_tokens_field name price provider queue_timeout rpm " +
			"stream_idle_timeout timeout"},
		{"model.price", "cache_write cached_input input output"},
		{"gateway", "max_request_bytes"},
		{"tracing", "enabled endpoint headers protocol sample_ratio sampler service_name"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			s := rootSchema
			if tt.path != "" {
				for _, part := range strings.Split(tt.path, ".") {
					s = s.fields[part].block
				}
			}
			if got := strings.Join(s.names(true, true), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
