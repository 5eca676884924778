package policies

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// fullBreakers is the breakers of testdata/full.hcl.
func fullBreakers() map[string]Breaker {
	return map[string]Breaker{
		"default": {
			Name:                "default",
			ConsecutiveFailures: 5,
			FailureRate:         50,
			MinCalls:            20,
			Window:              2 * time.Minute,
			OpenFor:             10 * time.Second,
			MaxOpenFor:          5 * time.Minute,
			HalfOpenProbes:      2,
			FailureStatuses:     append([]int{429}, statusRange(500, 599)...),
			SlowCall:            45 * time.Second,
		},
		"strict": {
			Name:                "strict",
			ConsecutiveFailures: 1,
			MinCalls:            10,
			Window:              time.Minute,
			OpenFor:             30 * time.Second,
			MaxOpenFor:          10 * time.Minute,
			HalfOpenProbes:      1,
			FailureStatuses:     append(statusRange(400, 499), 503),
		},
	}
}

// fullUpstreams is the upstreams of testdata/full.hcl.
func fullUpstreams() map[string]Upstream {
	return map[string]Upstream{
		"researcher": {
			Name:     "researcher",
			Service:  "research-svc",
			Tags:     []string{"capability:summarize", "eu"},
			Filter:   `Service.Meta.tier == "full"`,
			Breaker:  "strict",
			Timeout:  2 * time.Minute,
			Retries:  2,
			Fallback: []string{"researcher-lite", "static"},
			Balance:  BalanceLeastOutstanding,
		},
		"researcher-lite": {
			Name:    "researcher-lite",
			Service: "researcher-lite",
			Filter:  `Service.Meta.tier == "lite"`,
			Breaker: "default",
			Timeout: time.Minute,
			Retries: 0,
			Balance: BalanceRoundRobin,
		},
		"static": {
			Name:    "static",
			URL:     "http://127.0.0.1:9200/api",
			Breaker: "default",
			Timeout: 5 * time.Second,
			Retries: 1,
			Balance: BalanceRoundRobin,
		},
	}
}

// policyDefaults is the configuration of testdata/upstream_defaults.hcl:
// breaker, upstream and ingress blocks with only their required keys.
func policyDefaults() *Config {
	want := defaultConfig("writer", "testdata/upstream_defaults.hcl")
	want.Agent.Port = 8081
	slow := defaultBreaker("slow")
	slow.OpenFor = time.Minute
	want.Breakers["slow"] = slow // "default" stays implicit
	want.Upstreams = map[string]Upstream{
		"researcher": {
			Name:    "researcher",
			Service: "researcher", // the block's name
			Breaker: "default",
			Timeout: 60 * time.Second,
			Retries: 1,
			Balance: BalanceRoundRobin,
		},
		"static": {
			Name:    "static",
			URL:     "https://tools.example.com", // no service with a url
			Breaker: "default",
			Timeout: 60 * time.Second,
			Retries: 1,
			Balance: BalanceRoundRobin,
		},
	}
	want.Ingress = &Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 2 * time.Minute,
		MaxConnections: 2048, BodyReadTimeout: time.Minute}
	return want
}

func TestUpstreamAndIngressErrors(t *testing.T) {
	const dir = "testdata/invalid/"
	const invalidServiceName = `"bad_label" is not a valid Consul service name: use letters, digits and dashes, ` +
		`starting and ending with a letter or digit, at most 63 characters; ` +
		`it defaults to the block's name: set service = "…" or url = "…"`
	const consulOnly = " selects Consul instances, but this upstream has a static url: remove one of them"
	const neverEnds = ": a fallback chain must end; remove one of these fallbacks"
	tests := []struct {
		name string
		path string
		want Diagnostics
	}{
		{
			name: "upstream values",
			path: dir + "upstream_values.hcl",
			want: Diagnostics{
				{Line: 8, Column: 3, Key: "upstream.researcher.breaker",
					Message: `no breaker block named "fast"; defined: default, slow`},
				{Line: 9, Column: 3, Key: "upstream.researcher.timeout", Message: `must be greater than 0, got "0s"`},
				{Line: 10, Column: 3, Key: "upstream.researcher.retries", Message: "must be 0 or more, got -1"},
				{Line: 11, Column: 3, Key: "upstream.researcher.fallback",
					Message: `no upstream block named "researcher-lit"; defined: bad_label, query, researcher, ` +
						`researcher-lite, static; did you mean "researcher-lite"?`},
				{Line: 11, Column: 3, Key: "upstream.researcher.fallback",
					Message: `"researcher-lite" is listed twice: remove one`},
				{Line: 12, Column: 3, Key: "upstream.researcher.balance",
					Message: `must be "round_robin" or "least_outstanding", got "random"`},
				{Line: 17, Column: 3, Key: "upstream.researcher-lite.url",
					Message: "service and url are mutually exclusive: remove one of them"},
				{Line: 21, Column: 3, Key: "upstream.static.url",
					Message: `must be an absolute http or https URL, e.g. "http://127.0.0.1:9200", got "ftp://files.example.com"`},
				{Line: 22, Column: 3, Key: "upstream.static.tags", Message: "tags" + consulOnly},
				{Line: 23, Column: 3, Key: "upstream.static.filter", Message: "filter" + consulOnly},
				{Line: 27, Column: 3, Key: "upstream.query.url",
					Message: "a query or fragment is not supported: give the scheme, host, port and path only"},
				// The service name defaults to the label: the error points at the block.
				{Line: 30, Column: 1, Key: "upstream.bad_label.service", Message: invalidServiceName},
			},
		},
		{
			name: "fallback cycles",
			path: dir + "fallback_cycle.hcl",
			want: Diagnostics{
				{Line: 6, Column: 3, Key: "upstream.researcher.fallback",
					Message: "fallback cycle researcher → researcher-lite → researcher" + neverEnds},
				{Line: 14, Column: 3, Key: "upstream.loop.fallback", Message: "fallback cycle loop → loop" + neverEnds},
				{Line: 22, Column: 3, Key: "upstream.b.fallback", Message: "fallback cycle b → c → b" + neverEnds},
			},
		},
		{
			name: "ingress without address",
			path: dir + "ingress_no_address.hcl",
			want: Diagnostics{
				{Line: 6, Column: 1, Key: "ingress.address",
					Message: `required: the address callers send tasks to, e.g. address = "0.0.0.0:7080"`},
				{Line: 7, Column: 3, Key: "ingress.breaker", Message: `no breaker block named "fats"; defined: default`},
				{Line: 8, Column: 3, Key: "ingress.timeout",
					Message: `invalid duration "1x": use a number and a unit, e.g. "30s", "5m"`},
				{Line: 9, Column: 3, Key: "ingress.fallback", Message: `no upstream block named "writer-lite"; defined: none`},
			},
		},
		{
			name: "ingress address not host:port",
			path: dir + "ingress_bad_address.hcl",
			want: Diagnostics{
				{Line: 7, Column: 3, Key: "ingress.address",
					Message: `invalid address "7080": not of the form host:port; use host:port, e.g. "0.0.0.0:7080"`},
			},
		},
		{
			name: "ingress on the control API's address",
			path: dir + "ingress_same_as_listen.hcl",
			want: Diagnostics{
				{Line: 11, Column: 3, Key: "ingress.address",
					Message: "the same as listen.address: give the ingress its own port"},
			},
		},
		{
			name: "ingress on every interface at the control API's port",
			path: dir + "ingress_overlaps_listen.hcl",
			want: Diagnostics{
				{Line: 7, Column: 3, Key: "ingress.address",
					Message: `"0.0.0.0:7070" overlaps listen.address "127.0.0.1:7070": give the ingress its own port`},
			},
		},
		{
			name: "ingress without agent.port",
			path: dir + "ingress_no_agent_port.hcl",
			want: Diagnostics{
				{Line: 5, Column: 1, Key: "ingress",
					Message: "needs agent.port, the port the agent takes tasks on: set port in the agent block, e.g. port = 8081"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadDiagnostics(t, tt.path)

			for i := range tt.want {
				tt.want[i].File = tt.path
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestCheckUpstreamURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://127.0.0.1:9200", ""},
		{"https://tools.example.com/api/v1", ""},
		{"http://[::1]:9200/", ""},
		{"127.0.0.1:9200", `is not a valid URL: use an absolute http or https URL, e.g. "http://127.0.0.1:9200"`},
		{"tools.example.com/api", `must be an absolute http or https URL, e.g. "http://127.0.0.1:9200", got "tools.example.com/api"`},
		{"http://127.0.0.1:99999", `invalid port in "http://127.0.0.1:99999": the port must be a number between 0 and 65535`},
		{"http://u:p@tools.example.com", "user information is not supported: give the scheme, host, port and path only"},
		{"http://tools.example.com/?", "a query or fragment is not supported: give the scheme, host, port and path only"},
		{"http://tools.example.com/#top", "a query or fragment is not supported: give the scheme, host, port and path only"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := checkUpstreamURL(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSummaryOfDefaultPolicies(t *testing.T) {
	clearConsulEnv(t)
	cfg, err := Load("testdata/minimal.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	out, err := json.Marshal(cfg.Summary())
	if err != nil {
		t.Fatalf("marshal summary: %v", err)
	}
	var got struct {
		Breakers  map[string]map[string]any `json:"breakers"`
		Upstreams map[string]any            `json:"upstreams"`
		Ingress   map[string]any            `json:"ingress"`
		Models    map[string]any            `json:"models"`
		Gateway   map[string]any            `json:"gateway"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unmarshal summary: %v", err)
	}

	want := map[string]map[string]any{"default": {
		"consecutive_failures": float64(3),
		"failure_rate":         float64(0),
		"min_calls":            float64(10),
		"window":               "1m0s",
		"open_for":             "30s",
		"max_open_for":         "10m0s",
		"half_open_probes":     float64(1),
		"failure_statuses":     []any{float64(429), "5xx"},
		"slow_call":            "0s",
	}}
	if !reflect.DeepEqual(got.Breakers, want) {
		t.Errorf("breakers: got %v, want %v", got.Breakers, want)
	}
	if got.Upstreams == nil || len(got.Upstreams) != 0 {
		t.Errorf("upstreams: got %#v, want {}", got.Upstreams)
	}
	if got.Ingress != nil {
		t.Errorf("ingress: got %v, want null", got.Ingress)
	}
	if got.Models == nil || len(got.Models) != 0 {
		t.Errorf("models: got %#v, want {}", got.Models)
	}
	if want := map[string]any{"max_request_bytes": float64(10 << 20)}; !reflect.DeepEqual(got.Gateway, want) {
		t.Errorf("gateway: got %v, want %v", got.Gateway, want)
	}
}
