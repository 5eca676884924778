package policies

// The file structs below mirror the HCL file format exactly: each
// `mapstructure` tag is a key users write, and the Go type of a field says
// what may be written there (see schema.go):
//
//	*string, *int, *bool   an attribute holding one value; nil means unset
//	*float64               an attribute holding a number that may have a fraction
//	[]string               an attribute holding a list of strings
//	[]any                  an attribute holding a list of whole numbers and
//	                       strings (each element an int or a string)
//	map[string]string      an attribute holding a map of strings
//	*struct                a block that appears at most once
//	map[string]*struct     blocks with one label, unique by label
//
// A field tagged `secret:"true"` holds a secret (for a map, its values are
// secrets): its value never appears in an error message.
//
// Adding a block type takes a file struct here, a field in fileConfig,
// defaults in defaults.go, checks in validate.go, and the resolved type in
// config.go; parsing, unknown-key and type errors follow from the struct.

// fileConfig is the top level of the merged configuration files. Only
// blocks are allowed at the top level.
type fileConfig struct {
	Agent  *agentFile             `mapstructure:"agent"`
	Listen *listenFile            `mapstructure:"listen"`
	Consul *consulFile            `mapstructure:"consul"`
	Health *healthFile            `mapstructure:"health"`
	Notify map[string]*notifyFile `mapstructure:"notify"`

	Breaker  map[string]*breakerFile  `mapstructure:"breaker"`
	Upstream map[string]*upstreamFile `mapstructure:"upstream"`
	Ingress  *ingressFile             `mapstructure:"ingress"`

	Model   map[string]*modelFile `mapstructure:"model"`
	Gateway *gatewayFile          `mapstructure:"gateway"`
	Log     *logFile              `mapstructure:"log"`
	TLS     *tlsFile              `mapstructure:"tls"`

	Budget map[string]*budgetFile `mapstructure:"budget"`

	Tracing *tracingFile `mapstructure:"tracing"`
}

type tlsFile struct {
	CAFile *string `mapstructure:"ca_file"`
}

type logFile struct {
	Level *string `mapstructure:"level"`
	JSON  *bool   `mapstructure:"json"`
}

type agentFile struct {
	Name    *string           `mapstructure:"name"`
	ID      *string           `mapstructure:"id"`
	Address *string           `mapstructure:"address"`
	Port    *int              `mapstructure:"port"`
	Tags    []string          `mapstructure:"tags"`
	Meta    map[string]string `mapstructure:"meta"`
	Exec    *execFile         `mapstructure:"exec"`
	// StateDir is where the sidecar keeps state across restarts (the
	// budgets' spend).
	StateDir *string `mapstructure:"state_dir"`
}

type execFile struct {
	Command            []string          `mapstructure:"command"`
	Env                map[string]string `mapstructure:"env" secret:"true"`
	Dir                *string           `mapstructure:"dir"`
	Restart            *string           `mapstructure:"restart"`
	RestartOnIsolation *bool             `mapstructure:"restart_on_isolation"`
	StopTimeout        *string           `mapstructure:"stop_timeout"`
	RestartBackoff     *string           `mapstructure:"restart_backoff"`
	MaxRestartBackoff  *string           `mapstructure:"max_restart_backoff"`
	User               *string           `mapstructure:"user"`
	PassEnv            []string          `mapstructure:"pass_env"`
}

type listenFile struct {
	Address     *string `mapstructure:"address"`
	AllowRemote *bool   `mapstructure:"allow_remote"`
	Token       *string `mapstructure:"token" secret:"true"`
	TokenScope  *string `mapstructure:"token_scope"`

	AllowedHosts    []string `mapstructure:"allowed_hosts"`
	MaxConnections  *int     `mapstructure:"max_connections"`
	BodyReadTimeout *string  `mapstructure:"body_read_timeout"`
	ProbeAddress    *string  `mapstructure:"probe_address"`
}

type consulFile struct {
	Address                 *string `mapstructure:"address"`
	Token                   *string `mapstructure:"token" secret:"true"`
	DeregisterCriticalAfter *string `mapstructure:"deregister_critical_after"`
	SyncInterval            *string `mapstructure:"sync_interval"`
	PolicyPrefix            *string `mapstructure:"policy_prefix"`
	FleetPrefix             *string `mapstructure:"fleet_prefix"`
	CAFile                  *string `mapstructure:"ca_file"`
	CertFile                *string `mapstructure:"cert_file"`
	KeyFile                 *string `mapstructure:"key_file"`
	TLSServerName           *string `mapstructure:"tls_server_name"`
	InsecureSkipVerify      *bool   `mapstructure:"insecure_skip_verify"`
}

type healthFile struct {
	HeartbeatInterval *string    `mapstructure:"heartbeat_interval"`
	MissedHeartbeats  *int       `mapstructure:"missed_heartbeats"`
	Grace             *string    `mapstructure:"grace"`
	StallAfter        *string    `mapstructure:"stall_after"`
	LivenessAfter     *string    `mapstructure:"liveness_after"`
	Notify            []string   `mapstructure:"notify"`
	Probe             *probeFile `mapstructure:"probe"`
}

type probeFile struct {
	URL      *string `mapstructure:"url"`
	Interval *string `mapstructure:"interval"`
	Timeout  *string `mapstructure:"timeout"`
}

type notifyFile struct {
	Webhook *string           `mapstructure:"webhook"`
	Headers map[string]string `mapstructure:"headers" secret:"true"`
	Timeout *string           `mapstructure:"timeout"`
	Retries *int              `mapstructure:"retries"`
}

type breakerFile struct {
	ConsecutiveFailures *int    `mapstructure:"consecutive_failures"`
	FailureRate         *int    `mapstructure:"failure_rate"`
	MinCalls            *int    `mapstructure:"min_calls"`
	Window              *string `mapstructure:"window"`
	OpenFor             *string `mapstructure:"open_for"`
	MaxOpenFor          *string `mapstructure:"max_open_for"`
	HalfOpenProbes      *int    `mapstructure:"half_open_probes"`
	FailureStatuses     []any   `mapstructure:"failure_statuses"`
	SlowCall            *string `mapstructure:"slow_call"`
}

type upstreamFile struct {
	Service  *string  `mapstructure:"service"`
	URL      *string  `mapstructure:"url"`
	Tags     []string `mapstructure:"tags"`
	Filter   *string  `mapstructure:"filter"`
	Breaker  *string  `mapstructure:"breaker"`
	Timeout  *string  `mapstructure:"timeout"`
	Retries  *int     `mapstructure:"retries"`
	Fallback []string `mapstructure:"fallback"`
	Balance  *string  `mapstructure:"balance"`
	// MaxConcurrent is the bulkhead: calls in flight at once.
	MaxConcurrent *int `mapstructure:"max_concurrent"`
	// IngressToken is sent to the upstream's sidecar ingresses.
	IngressToken *string `mapstructure:"ingress_token" secret:"true"`
}

type ingressFile struct {
	Address  *string  `mapstructure:"address"`
	Breaker  *string  `mapstructure:"breaker"`
	Timeout  *string  `mapstructure:"timeout"`
	Fallback []string `mapstructure:"fallback"`
	// MaxConcurrent caps the tasks in flight to the local agent.
	MaxConcurrent *int `mapstructure:"max_concurrent"`

	Token           *string `mapstructure:"token" secret:"true"`
	MaxConnections  *int    `mapstructure:"max_connections"`
	BodyReadTimeout *string `mapstructure:"body_read_timeout"`
}

type modelFile struct {
	Provider          *string           `mapstructure:"provider"`
	BaseURL           *string           `mapstructure:"base_url"`
	APIKey            *string           `mapstructure:"api_key" secret:"true"`
	Headers           map[string]string `mapstructure:"headers" secret:"true"`
	Name              *string           `mapstructure:"name"`
	Breaker           *string           `mapstructure:"breaker"`
	Timeout           *string           `mapstructure:"timeout"`
	FirstByteTimeout  *string           `mapstructure:"first_byte_timeout"`
	StreamIdleTimeout *string           `mapstructure:"stream_idle_timeout"`
	Fallback          *string           `mapstructure:"fallback"`
	MaxTokens         *int              `mapstructure:"max_tokens"`
	MaxTokensField    *string           `mapstructure:"max_tokens_field"`
	ContextFallback   *string           `mapstructure:"context_fallback"`
	DropFields        []string          `mapstructure:"drop_fields"`
	DegradeOn         []string          `mapstructure:"degrade_on"`
	EmbeddingSpace    *string           `mapstructure:"embedding_space"`
	MaxConcurrent     *int              `mapstructure:"max_concurrent"`
	RPM               *int              `mapstructure:"rpm"`
	QueueTimeout      *string           `mapstructure:"queue_timeout"`
	Price             *priceFile        `mapstructure:"price"`
}

// priceFile is a model's price, in US dollars per million tokens.
type priceFile struct {
	Input       *float64 `mapstructure:"input"`
	Output      *float64 `mapstructure:"output"`
	CachedInput *float64 `mapstructure:"cached_input"`
	CacheWrite  *float64 `mapstructure:"cache_write"`
}

type gatewayFile struct {
	MaxRequestBytes *int `mapstructure:"max_request_bytes"`
}

// budgetFile is a `budget "NAME" { ... }` block: a limit on what the agent
// spends on models over a window.
type budgetFile struct {
	Window    *string  `mapstructure:"window"`
	CostUSD   *float64 `mapstructure:"cost_usd"`
	Tokens    *int     `mapstructure:"tokens"`
	Action    *string  `mapstructure:"action"`
	DegradeTo *string  `mapstructure:"degrade_to"`
	WarnAt    *int     `mapstructure:"warn_at"`
	Models    []string `mapstructure:"models"`
	Scope     *string  `mapstructure:"scope"`
	SyncEvery *string  `mapstructure:"sync_every"`
}
