// Package policies loads the sidecar's HCL configuration and policy files:
// parsing (hcl/v2), decoding (mapstructure), defaults, and validation with
// file:line:col errors. The types in this file are the resolved runtime
// configuration that the rest of the sidecar reads; they carry plain Go types
// (time.Duration, int, string) and never pointers.
package policies

import "time"

// Config is the resolved configuration of one sidecar. The reload tag of
// each field says whether a reload applies it or it needs a restart (see
// reload.go); a field without one fails the tests.
type Config struct {
	Agent  Agent  `reload:"fields"`
	Listen Listen `reload:"restart"`
	Consul Consul `reload:"fields"`
	Health Health `reload:"live"`
	// Notify holds the notification targets by name (the label of each
	// `notify "NAME" { ... }` block).
	Notify map[string]Notify `reload:"live"`
	// Breakers holds the circuit breaker settings by name (the label of each
	// `breaker "NAME" { ... }` block). It always has "default".
	Breakers map[string]Breaker `reload:"live"`
	// Upstreams holds the targets of /call/{upstream}/… by name (the label
	// of each `upstream "NAME" { ... }` block).
	Upstreams map[string]Upstream `reload:"live"`
	// Ingress is the task port in front of the agent; nil when not
	// configured.
	Ingress *Ingress `reload:"fields,presence=address"`
	// Models holds the model gateway's models by label (the label of each
	// `model "LABEL" { ... }` block). Empty, never nil, without models.
	Models map[string]Model `reload:"live"`
	// Gateway holds the model gateway's own settings.
	Gateway Gateway `reload:"live"`
	// TLS holds the settings of outgoing TLS (calls, models, webhooks).
	TLS TLS `reload:"restart"`
	// Budgets holds the spending limits by name (the label of each
	// `budget "NAME" { ... }` block); nil without budgets.
	Budgets map[string]Budget `reload:"live"`
	// Log is how the sidecar logs; the -log-level and -log-json flags and
	// $SIDECAR_LOG_LEVEL / $SIDECAR_LOG_JSON take precedence.
	Log Log `reload:"restart"`
	// Tracing is how OpenTelemetry traces are exported; off by default.
	Tracing Tracing `reload:"restart"`

	// Sources lists the files the configuration was read from, in load order.
	// Empty for the built-in -dev configuration.
	Sources []string `reload:"live"`
}

// Agent describes the agent the sidecar runs beside.
type Agent struct {
	Name    string            `reload:"restart"`       // Consul service name. Required in files; "agent" under -dev.
	ID      string            `reload:"restart"`       // Consul service ID. Default: Name.
	Address string            `reload:"live"`          // Address the agent takes tasks on. Default "127.0.0.1".
	Port    int               `reload:"live"`          // Port the agent takes tasks on. Default 0 (none).
	Tags    []string          `reload:"live"`          // Extra Consul tags; "ai-agent" is always added by the sidecar.
	Meta    map[string]string `reload:"live"`          // Consul service meta.
	Exec    *Exec             `reload:"live,presence"` // Nil unless the sidecar supervises the agent process.
	// StateDir is the directory of the state kept across restarts (the
	// budgets' spend); "" for the default, which StatePath resolves.
	StateDir string `reload:"restart"`
}

// Restart policies for a supervised agent.
const (
	RestartAlways    = "always"     // restart whenever the process exits
	RestartOnFailure = "on-failure" // restart when it exits non-zero or by a signal
	RestartNever     = "never"      // never restart (isolation restarts still apply)
)

// Exec describes a supervised agent process.
type Exec struct {
	Command            []string          // argv; required, at least one element.
	Env                map[string]string // extra environment, added to the sidecar's own.
	Dir                string            // working directory. Default: the sidecar's.
	Restart            string            // RestartAlways (default) | RestartOnFailure | RestartNever.
	RestartOnIsolation bool              // restart the process when the agent is isolated. Default true.
	StopTimeout        time.Duration     // SIGTERM → SIGKILL grace. Default 10s.
	RestartBackoff     time.Duration     // first restart delay, doubled per quick exit. Default 1s.
	MaxRestartBackoff  time.Duration     // cap of the restart delay. Default 1m.
	// User runs the agent as this user (a name or a numeric uid, with its
	// primary group); the sidecar must then run as root. Default: the
	// sidecar's own user.
	User string
	// PassEnv names variables of the sidecar's environment the agent
	// inherits besides the harmless ones (PATH, HOME, LANG, …): a name, or
	// a prefix ending in "*". Default none.
	PassEnv []string
}

// Listen is the control API listener.
type Listen struct {
	Address     string // Default "127.0.0.1:7070".
	AllowRemote bool   // Must be true for a non-loopback Address. Default false.
	// Token, when set, is required on the control listener: on every
	// endpoint but /v1/health (TokenScope "all"), or on those that change
	// the sidecar's state (TokenScope "mutating": breaker actions, reload).
	// Default: $SIDECAR_TOKEN. Secret. Required with AllowRemote.
	Token      string
	TokenScope string // TokenAll (default) | TokenMutating (loopback only).
	// AllowedHosts are the names, besides the bound address and the
	// loopback names, a request's Host may carry (allow_remote only).
	AllowedHosts []string
	// MaxConnections caps the listener's open connections; more wait to be
	// accepted. Default 2048.
	MaxConnections int
	// BodyReadTimeout bounds the time a request's body may take to arrive.
	// Default 1m.
	BodyReadTimeout time.Duration
	// ProbeAddress is the read-only probe listener: GET /v1/agent/live,
	// /v1/agent/ready and /v1/health only, any Host, no token, for a
	// kubelet on the pod IP. "" (default) starts none.
	ProbeAddress string
}

// Token scopes of the control listener.
const (
	TokenAll      = "all"      // every endpoint but /v1/health
	TokenMutating = "mutating" // breaker open/close/reset and reload
)

// Consul describes how to reach the local Consul agent.
type Consul struct {
	Address                 string        `reload:"restart"` // Default: $CONSUL_HTTP_ADDR, else "127.0.0.1:8500".
	Token                   string        `reload:"restart"` // Default: $CONSUL_HTTP_TOKEN. Secret: never logged.
	DeregisterCriticalAfter time.Duration `reload:"live"`    // Default 72h; minimum 1m (Consul's own minimum).
	SyncInterval            time.Duration `reload:"restart"` // How often registration is verified. Default 5s.
	// PolicyPrefix is the Consul KV prefix of fleet-wide policies, ending
	// in "/"; "" (default) reads none.
	PolicyPrefix string `reload:"restart"`
	// FleetPrefix is the Consul KV prefix under which the sidecar keeps
	// its report for `sidecar fleet` (key <prefix><agent id>), ending in
	// "/"; "" writes none. Default "sidecar/fleet/".
	FleetPrefix string `reload:"restart"`

	// HTTPS to Consul. As with the consul CLI, HTTPS is chosen by an
	// https:// Address or CONSUL_HTTP_SSL=true, never by these settings:
	// with an http address they are checked but not used. A value in a
	// file wins over its variable; "" counts as unset.

	// CAFile is a PEM bundle of the certificate authorities that sign
	// Consul's certificate, trusted instead of the system's. Default:
	// $CONSUL_CACERT.
	CAFile string `reload:"restart,group=consul TLS"`
	// CertFile and KeyFile are a client certificate and its private key
	// (PEM) for a Consul that verifies its HTTPS clients: both or neither.
	// Default: $CONSUL_CLIENT_CERT and $CONSUL_CLIENT_KEY, used only when
	// the files set neither. The key's path may be shown; its contents
	// never are.
	CertFile string `reload:"restart,group=consul TLS"`
	KeyFile  string `reload:"restart,group=consul TLS"`
	// TLSServerName is the name Consul's certificate is checked against.
	// Default: $CONSUL_TLS_SERVER_NAME, else the host of Address.
	TLSServerName string `reload:"restart,group=consul TLS"`
	// InsecureSkipVerify accepts any certificate from Consul. Default
	// false; only a file turns it on (CONSUL_HTTP_SSL_VERIFY is not read),
	// and the sidecar warns at start.
	InsecureSkipVerify bool `reload:"restart,group=consul TLS"`
}

// Health describes heartbeat tracking.
type Health struct {
	HeartbeatInterval time.Duration // Default 5m.
	MissedHeartbeats  int           // Default 2; at least 1.
	Grace             time.Duration // Default 30s.
	StallAfter        time.Duration // 0 (default) disables stall detection.
	// LivenessAfter is how long the agent stays isolated before
	// GET /v1/agent/live fails. Default 0: as soon as it is isolated.
	LivenessAfter time.Duration
	// Notify names the notify blocks told about isolations and
	// recoveries; each exists. Unset in the files: every notify block,
	// sorted by name; an explicit [] in the files: none.
	Notify []string
	Probe  *Probe // nil unless the sidecar probes the agent.
}

// StartupWindow is how long after the agent (or the sidecar) starts
// GET /v1/agent/live passes without a heartbeat: grace + 2 × interval.
func (h Health) StartupWindow() time.Duration {
	return h.Grace + 2*h.HeartbeatInterval
}

// TTL is the Consul TTL of the heartbeat check: missed × interval + grace.
func (h Health) TTL() time.Duration {
	return time.Duration(h.MissedHeartbeats)*h.HeartbeatInterval + h.Grace
}

// Probe makes the sidecar poll an HTTP URL of the agent; each 2xx counts as
// a heartbeat.
type Probe struct {
	URL      string        // http(s) URL; required.
	Interval time.Duration // Default: the heartbeat interval.
	Timeout  time.Duration // Default 5s.
}

// Notify is a notification target.
type Notify struct {
	Name    string
	Webhook string            // http(s) URL; required.
	Headers map[string]string // sent with every POST; values are secrets.
	Timeout time.Duration     // per attempt. Default 10s.
	Retries int               // attempts after the first. Default 5.
}

// DefaultBreaker is the name of the breaker that always exists: the
// built-in defaults, unless a `breaker "default"` block changes them.
const DefaultBreaker = "default"

// Breaker holds the settings of a circuit breaker. A breaker opens after
// ConsecutiveFailures failures in a row, or (when FailureRate is set) when at
// least MinCalls calls within Window failed at FailureRate percent or more.
// After OpenFor it lets HalfOpenProbes calls through: success closes it,
// failure opens it again for twice as long, up to MaxOpenFor.
type Breaker struct {
	Name                string
	ConsecutiveFailures int           // Default 3; at least 1.
	FailureRate         int           // percent, 1 to 100; 0 (default) turns the rate rule off.
	MinCalls            int           // calls within Window before the rate applies. Default 10.
	Window              time.Duration // Default 1m.
	OpenFor             time.Duration // first open period. Default 30s.
	MaxOpenFor          time.Duration // cap of the doubled open period. Default 10m; at least OpenFor.
	HalfOpenProbes      int           // Default 1; at least 1.
	FailureStatuses     []int         // HTTP statuses that count as failures, sorted. Default 429 and 500–599.
	SlowCall            time.Duration // a call slower than this is a failure; 0 (default) is off.
}

// Load balancing policies of an upstream.
const (
	BalanceRoundRobin       = "round_robin"       // each instance in turn
	BalanceLeastOutstanding = "least_outstanding" // the instance with the fewest calls in flight
)

// Upstream is a target of /call/{upstream}/…: a Consul service or a static
// URL, with a breaker per instance and a fallback chain.
type Upstream struct {
	Name     string
	Service  string        // Consul service name; "" when URL is set. Default: Name.
	URL      string        // static base URL; "" when Service is set.
	Tags     []string      // only instances with all these tags (Consul only).
	Filter   string        // a Consul filter expression (Consul only).
	Breaker  string        // name of a breaker. Default "default".
	Timeout  time.Duration // the whole call. Default 60s.
	Retries  int           // retries on another instance, when safe. Default 1.
	Fallback []string      // upstreams tried in order when none of this one can answer.
	Balance  string        // BalanceRoundRobin (default) | BalanceLeastOutstanding.
	// MaxConcurrent caps the calls in flight to the upstream (a bulkhead);
	// a call beyond it goes to the fallbacks as if the upstream were open.
	// 0 (default) is no cap.
	MaxConcurrent int
	// IngressToken is sent as X-Sidecar-Ingress-Token to the instances
	// that are sidecars' ingresses (their Consul registration carries the
	// agent_port meta), or to URL when it is set: the ingress.token of the
	// sidecars the upstream reaches. Secret. Default: none.
	IngressToken string
	// IngressTokenEmpty says that ingress_token was set but is empty:
	// usually an environment variable that is not set (see Warnings).
	IngressTokenEmpty bool
}

// Ingress is the address callers send the agent's tasks to: the sidecar
// passes them to the agent (agent.port), else to a healthy peer, else to
// the fallback upstreams.
type Ingress struct {
	Address  string        `reload:"restart"` // host:port; required.
	Breaker  string        `reload:"live"`    // name of a breaker. Default "default".
	Timeout  time.Duration `reload:"live"`    // whole call. Default 2m.
	Fallback []string      `reload:"live"`    // upstreams tried after the agent and its peers.
	// MaxConcurrent caps the tasks in flight to the local agent; a task
	// beyond it goes to a peer or a fallback as when the agent is
	// isolated, else gets 503 with Retry-After. 0 (default): no cap.
	MaxConcurrent int `reload:"live"`
	// Token, when set, must be sent by every caller in the
	// X-Sidecar-Ingress-Token header (removed before the task is passed
	// on). Secret. Default: none.
	Token           string        `reload:"live"`
	MaxConnections  int           `reload:"restart"` // open connections; more wait. Default 2048.
	BodyReadTimeout time.Duration `reload:"live"`    // time a request's body may take. Default 1m.
}

// Model providers: the wire format a model speaks.
const (
	ProviderOpenAI    = "openai"    // POST {base_url}/chat/completions, …; Authorization: Bearer
	ProviderAnthropic = "anthropic" // POST {base_url}/v1/messages; x-api-key
)

// Answers that count as a failure of a model when listed in DegradeOn.
const (
	DegradeEmpty       = "empty"        // a completion with no content
	DegradeInvalidJSON = "invalid_json" // not JSON although the request asked for JSON
)

// MaxTokensFields are the fields a chat completion request may carry its
// cap in: max_tokens (most models), max_completion_tokens (OpenAI's
// reasoning models, which refuse max_tokens).
var MaxTokensFields = []string{"max_tokens", "max_completion_tokens"}

// Model is one model of the gateway: where it is, how to reach it, and the
// lighter model to fall back to.
type Model struct {
	Label    string // the block's label: what agents put in "model".
	Provider string // ProviderOpenAI | ProviderAnthropic; required.
	// BaseURL is the provider's base URL as its SDKs take it, without a
	// trailing "/": the endpoint's path is appended to it. Default
	// "https://api.openai.com/v1" (openai), "https://api.anthropic.com"
	// (anthropic).
	BaseURL string
	// APIKey is sent instead of the agent's own credentials; "" forwards
	// the agent's. Secret: never logged.
	APIKey string
	// APIKeyEmpty says that api_key was set but is empty: usually an
	// environment variable that is not set (see Config.Warnings).
	APIKeyEmpty bool
	// Headers are extra headers sent upstream (never Host or
	// Content-Length); values are secrets.
	Headers map[string]string
	Name    string // model name sent upstream; no whitespace. Default: Label.
	Breaker string // name of a breaker. Default "default".
	// Timeout bounds the whole call (a stream included). Default 2m.
	Timeout time.Duration
	// FirstByteTimeout bounds the wait for the first byte of the answer
	// (the first event of a stream). Default 30s; at most Timeout.
	FirstByteTimeout time.Duration
	// StreamIdleTimeout bounds the silence between two events of a started
	// stream. Default 60s.
	StreamIdleTimeout time.Duration
	// Fallback is the label of the next model down the chain; "" ends it.
	// Chains never loop. A model of the other provider gets the request
	// translated (package gateway/translate).
	Fallback string
	// ContextFallback is the label of the model (with a larger context
	// window, of either provider) that gets a request this model refused as too
	// long for its context window; "" passes that refusal to the agent.
	ContextFallback string
	MaxTokens       int // cap on the answer's tokens; 0 (default) is no cap.
	// MaxTokensField is the field of a chat completion request this model
	// takes its cap in, one of MaxTokensFields; the agent's cap is moved there
	// from the other one. "" (default): the cap stays in the field the
	// agent used, and a cap the request lacks is written as "max_tokens".
	MaxTokensField string
	DropFields     []string // top-level request fields removed before sending, the cap field included.
	DegradeOn      []string // DegradeEmpty, DegradeInvalidJSON; each at most once.
	// EmbeddingSpace names the vector space of the model's embeddings: an
	// embeddings request falls back only to a model of the same space.
	// "" (default): the provider and upstream name ("openai/" + Name), so
	// only the same model served elsewhere is interchangeable.
	EmbeddingSpace string
	// MaxConcurrent caps the model's requests in flight from this sidecar;
	// 0 (default) is no cap. RPM caps the requests sent per minute (spread
	// evenly, at most a second's share at once); 0 is no cap. A request
	// over either waits up to QueueTimeout (default 5s when either is set),
	// then goes on down the chain.
	MaxConcurrent int
	RPM           int
	QueueTimeout  time.Duration
	// Price turns the model's token usage into money; nil when the model
	// has no price block (its usage is counted, its cost is not).
	Price *Price
}

// Price is what a model's tokens cost, in US dollars per million tokens.
// CachedInput and CacheWrite default to Input.
type Price struct {
	Input       float64 // input tokens not read from a cache
	Output      float64 // output tokens (reasoning included)
	CachedInput float64 // input tokens read from the provider's cache
	CacheWrite  float64 // input tokens written to the provider's cache
}

// DefaultQueueTimeout is a model's queue_timeout when max_concurrent or
// rpm is set and it is not.
const DefaultQueueTimeout = 5 * time.Second

// Space is the model's embedding space (EmbeddingSpace, else provider/name).
func (m Model) Space() string {
	if m.EmbeddingSpace != "" {
		return m.EmbeddingSpace
	}
	return m.Provider + "/" + m.Name
}

// TLS holds the settings of the sidecar's outgoing TLS connections.
type TLS struct {
	// CAFile is a PEM bundle of extra certificate authorities trusted for
	// upstreams, models and webhooks, beside the system's. Default: none.
	CAFile string
}

// Log holds the logging settings.
type Log struct {
	Level string // trace | debug | info (default) | warn | error
	JSON  bool   // JSON lines instead of text. Default false.
}

// Gateway holds the model gateway's settings. It is filled with its
// defaults when the files have no gateway block.
type Gateway struct {
	MaxRequestBytes int64 // request bodies above this get 413. Default 10 MiB; at least 1024.
}
