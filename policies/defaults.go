package policies

import (
	"os"
	"strings"
	"time"
)

// Default values, as documented on the types in config.go.
const (
	defaultAgentAddress            = "127.0.0.1"
	defaultListenAddress           = "127.0.0.1:7070"
	defaultConsulAddress           = "127.0.0.1:8500"
	defaultDeregisterCriticalAfter = "72h"
	defaultSyncInterval            = "5s"
	defaultHeartbeatInterval       = "5m"
	defaultMissedHeartbeats        = 2
	defaultGrace                   = "30s"
	defaultStallAfter              = "0s"
	defaultLivenessAfter           = "0s"
	defaultProbeTimeout            = "5s"
	defaultRestart                 = RestartAlways
	defaultStopTimeout             = "10s"
	defaultRestartBackoff          = "1s"
	defaultMaxRestartBackoff       = "1m"
	defaultNotifyTimeout           = "10s"
	defaultNotifyRetries           = 5
	defaultConsecutiveFailures     = 3
	defaultFailureRate             = 0
	defaultMinCalls                = 10
	defaultWindow                  = "1m"
	defaultOpenFor                 = "30s"
	defaultMaxOpenFor              = "10m"
	defaultHalfOpenProbes          = 1
	defaultSlowCall                = "0s"
	defaultUpstreamTimeout         = "60s"
	defaultUpstreamRetries         = 1
	defaultBalance                 = BalanceRoundRobin
	defaultIngressTimeout          = "2m"
	defaultModelTimeout            = "2m"
	defaultFirstByteTimeout        = "30s"
	defaultStreamIdleTimeout       = "60s"
	defaultMaxRequestBytes         = 10 << 20 // 10 MiB
	defaultMaxConnections          = 2048
	defaultBodyReadTimeout         = "1m"
	devAgentName                   = "agent"
)

// defaultBaseURLs is each provider's base_url when unset, written the way
// the provider's own SDKs take it: OpenAI's includes /v1, Anthropic's does
// not.
var defaultBaseURLs = map[string]string{
	ProviderOpenAI:    "https://api.openai.com/v1",
	ProviderAnthropic: "https://api.anthropic.com",
}

// defaultFailureStatuses is failure_statuses when unset: 429 Too Many
// Requests and every server error.
func defaultFailureStatuses() []any { return []any{429, "5xx"} }

// Environment variables honoured when the files set no value.
const (
	envConsulAddress       = "CONSUL_HTTP_ADDR"
	envConsulToken         = "CONSUL_HTTP_TOKEN"
	envConsulCACert        = "CONSUL_CACERT"
	envConsulClientCert    = "CONSUL_CLIENT_CERT"
	envConsulClientKey     = "CONSUL_CLIENT_KEY"
	envConsulTLSServerName = "CONSUL_TLS_SERVER_NAME"
	envSidecarToken        = "SIDECAR_TOKEN"
)

// Dev returns the built-in configuration used by `sidecar agent -dev`: every
// default, agent name "agent", with CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and
// the CONSUL_* TLS variables honoured.
func Dev() *Config {
	fc := &fileConfig{Agent: &agentFile{Name: ptr(devAgentName)}}
	applyDefaults(fc, os.Getenv)
	return resolve(fc)
}

func ptr[T any](v T) *T { return &v }

func tlsCAFile(t *tlsFile) string {
	if t == nil {
		return ""
	}
	return deref(t.CAFile)
}

// setDefault sets *p to v when it is unset.
func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

// applyDefaults fills every unset value of fc with its default, reading the
// environment through getenv. Blocks that are optional (exec, probe,
// ingress) stay nil when absent; the "default" breaker is added when no
// block defines it, and the gateway block always gets its defaults. It returns, for each key whose value came from the
// environment, the variable's name.
func applyDefaults(fc *fileConfig, getenv func(string) string) map[string]string {
	fromEnv := map[string]string{}
	setDefault(&fc.Agent, agentFile{})
	a := fc.Agent
	if a.ID == nil && a.Name != nil {
		a.ID = ptr(*a.Name)
	}
	setDefault(&a.Address, defaultAgentAddress)
	setDefault(&a.Port, 0)
	if e := a.Exec; e != nil {
		setDefault(&e.Restart, defaultRestart)
		setDefault(&e.RestartOnIsolation, true)
		setDefault(&e.Dir, "")
		setDefault(&e.StopTimeout, defaultStopTimeout)
		setDefault(&e.RestartBackoff, defaultRestartBackoff)
		setDefault(&e.MaxRestartBackoff, defaultMaxRestartBackoff)
	}

	setDefault(&fc.Listen, listenFile{})
	setDefault(&fc.Listen.Address, defaultListenAddress)
	setDefault(&fc.Listen.AllowRemote, false)
	if fc.Listen.Token == nil || *fc.Listen.Token == "" {
		fc.Listen.Token = ptr(getenv(envSidecarToken))
	}
	setDefault(&fc.Listen.TokenScope, TokenAll)
	setDefault(&fc.Listen.MaxConnections, defaultMaxConnections)
	setDefault(&fc.Listen.BodyReadTimeout, defaultBodyReadTimeout)
	setDefault(&fc.Listen.ProbeAddress, "")

	setDefault(&fc.Consul, consulFile{})
	c := fc.Consul
	// An empty address or token counts as unset, so that `token = ""` in
	// a copied example still lets the environment supply one.
	if c.Address == nil || *c.Address == "" {
		if v := getenv(envConsulAddress); v != "" {
			c.Address = ptr(v)
			fromEnv["consul.address"] = envConsulAddress
		} else {
			c.Address = ptr(defaultConsulAddress)
		}
	}
	if c.Token == nil || *c.Token == "" {
		c.Token = ptr(getenv(envConsulToken))
	}
	setDefault(&c.DeregisterCriticalAfter, defaultDeregisterCriticalAfter)
	setDefault(&c.SyncInterval, defaultSyncInterval)
	// The TLS settings of the consul CLI's variables, each when the file
	// sets no value ("" counts as unset). The client certificate and its
	// key go together: the variables apply only when the file sets
	// neither, so a file's certificate is never paired with another key.
	fromEnvIfUnset := func(p **string, key, env string) {
		if *p != nil && **p != "" {
			return
		}
		*p = nil
		if v := getenv(env); v != "" {
			*p = ptr(v)
			fromEnv[key] = env
		}
	}
	fromEnvIfUnset(&c.CAFile, "consul.ca_file", envConsulCACert)
	if deref(c.CertFile) == "" && deref(c.KeyFile) == "" {
		fromEnvIfUnset(&c.CertFile, "consul.cert_file", envConsulClientCert)
		fromEnvIfUnset(&c.KeyFile, "consul.key_file", envConsulClientKey)
	} else {
		for _, p := range []**string{&c.CertFile, &c.KeyFile} {
			if deref(*p) == "" {
				*p = nil
			}
		}
	}
	fromEnvIfUnset(&c.TLSServerName, "consul.tls_server_name", envConsulTLSServerName)
	setDefault(&c.InsecureSkipVerify, false)

	setDefault(&fc.Health, healthFile{})
	h := fc.Health
	setDefault(&h.HeartbeatInterval, defaultHeartbeatInterval)
	setDefault(&h.MissedHeartbeats, defaultMissedHeartbeats)
	setDefault(&h.Grace, defaultGrace)
	setDefault(&h.StallAfter, defaultStallAfter)
	setDefault(&h.LivenessAfter, defaultLivenessAfter)
	if p := h.Probe; p != nil {
		setDefault(&p.Interval, *h.HeartbeatInterval)
		setDefault(&p.Timeout, defaultProbeTimeout)
	}

	if fc.Notify == nil {
		fc.Notify = map[string]*notifyFile{}
	}
	for _, n := range fc.Notify {
		setDefault(&n.Timeout, defaultNotifyTimeout)
		setDefault(&n.Retries, defaultNotifyRetries)
	}
	// health.notify unset tells every notify block, those of the fleet
	// policies included; an explicit [] decodes as an empty list, not
	// nil, and tells none.
	if h.Notify == nil {
		h.Notify = sortedKeys(fc.Notify)
	}

	if fc.Breaker == nil {
		fc.Breaker = map[string]*breakerFile{}
	}
	if fc.Breaker[DefaultBreaker] == nil {
		fc.Breaker[DefaultBreaker] = &breakerFile{}
	}
	for _, b := range fc.Breaker {
		breakerDefaults(b)
	}

	if fc.Upstream == nil {
		fc.Upstream = map[string]*upstreamFile{}
	}
	for name, u := range fc.Upstream {
		if u.URL == nil {
			setDefault(&u.Service, name)
		}
		setDefault(&u.Breaker, DefaultBreaker)
		setDefault(&u.Timeout, defaultUpstreamTimeout)
		setDefault(&u.Retries, defaultUpstreamRetries)
		setDefault(&u.Balance, defaultBalance)
	}

	if in := fc.Ingress; in != nil {
		setDefault(&in.Breaker, DefaultBreaker)
		setDefault(&in.Timeout, defaultIngressTimeout)
		setDefault(&in.Token, "")
		setDefault(&in.MaxConnections, defaultMaxConnections)
		setDefault(&in.BodyReadTimeout, defaultBodyReadTimeout)
	}

	if fc.Budget == nil {
		fc.Budget = map[string]*budgetFile{}
	}
	for _, b := range fc.Budget {
		budgetDefaults(b)
	}

	if fc.Model == nil {
		fc.Model = map[string]*modelFile{}
	}
	for label, m := range fc.Model {
		// A provider that is not known gets no base URL: validation
		// reports the provider, and nothing more about the URL.
		if url, ok := defaultBaseURLs[deref(m.Provider)]; ok {
			setDefault(&m.BaseURL, url)
		}
		setDefault(&m.Name, label)
		setDefault(&m.Breaker, DefaultBreaker)
		setDefault(&m.Timeout, defaultModelTimeout)
		setDefault(&m.FirstByteTimeout, defaultFirstByteTimeout)
		setDefault(&m.StreamIdleTimeout, defaultStreamIdleTimeout)
		setDefault(&m.MaxTokens, 0)
		if p := m.Price; p != nil && p.Input != nil {
			setDefault(&p.CachedInput, *p.Input)
			setDefault(&p.CacheWrite, *p.Input)
		}
	}

	setDefault(&fc.Log, logFile{})
	setDefault(&fc.Log.Level, "info")
	setDefault(&fc.Log.JSON, false)
	setDefault(&fc.Gateway, gatewayFile{})
	setDefault(&fc.Gateway.MaxRequestBytes, defaultMaxRequestBytes)
	tracingDefaults(fc, getenv, fromEnv)
	return fromEnv
}

// resolve builds the runtime configuration from file structs that have
// their defaults applied and have been validated.
func resolve(fc *fileConfig) *Config {
	a, h := fc.Agent, fc.Health
	cfg := &Config{
		Agent: Agent{
			Name:    deref(a.Name),
			ID:      deref(a.ID),
			Address: deref(a.Address),
			Port:    deref(a.Port),
			Tags:    a.Tags,
			Meta:    a.Meta,

			StateDir: deref(a.StateDir),
		},
		Listen: Listen{
			Address:     deref(fc.Listen.Address),
			AllowRemote: deref(fc.Listen.AllowRemote),
			Token:       deref(fc.Listen.Token),
			TokenScope:  deref(fc.Listen.TokenScope),

			AllowedHosts:    fc.Listen.AllowedHosts,
			MaxConnections:  deref(fc.Listen.MaxConnections),
			BodyReadTimeout: duration(fc.Listen.BodyReadTimeout),
			ProbeAddress:    deref(fc.Listen.ProbeAddress),
		},
		Consul: Consul{
			Address:                 deref(fc.Consul.Address),
			Token:                   deref(fc.Consul.Token),
			DeregisterCriticalAfter: duration(fc.Consul.DeregisterCriticalAfter),
			SyncInterval:            duration(fc.Consul.SyncInterval),
			PolicyPrefix:            policyPrefix(deref(fc.Consul.PolicyPrefix)),
			FleetPrefix:             fleetPrefix(fc.Consul.FleetPrefix),
			CAFile:                  deref(fc.Consul.CAFile),
			CertFile:                deref(fc.Consul.CertFile),
			KeyFile:                 deref(fc.Consul.KeyFile),
			TLSServerName:           deref(fc.Consul.TLSServerName),
			InsecureSkipVerify:      deref(fc.Consul.InsecureSkipVerify),
		},
		Health: Health{
			HeartbeatInterval: duration(h.HeartbeatInterval),
			MissedHeartbeats:  deref(h.MissedHeartbeats),
			Grace:             duration(h.Grace),
			StallAfter:        duration(h.StallAfter),
			LivenessAfter:     duration(h.LivenessAfter),
			Notify:            h.Notify,
		},
		Notify:    make(map[string]Notify, len(fc.Notify)),
		Breakers:  make(map[string]Breaker, len(fc.Breaker)),
		Upstreams: make(map[string]Upstream, len(fc.Upstream)),
		Models:    make(map[string]Model, len(fc.Model)),
		Gateway:   Gateway{MaxRequestBytes: int64(deref(fc.Gateway.MaxRequestBytes))},
		Log:       Log{Level: deref(fc.Log.Level), JSON: deref(fc.Log.JSON)},
		TLS:       TLS{CAFile: tlsCAFile(fc.TLS)},
		Tracing:   resolveTracing(fc.Tracing),
	}
	if e := a.Exec; e != nil {
		cfg.Agent.Exec = &Exec{
			Command:            e.Command,
			Env:                e.Env,
			Dir:                deref(e.Dir),
			Restart:            deref(e.Restart),
			RestartOnIsolation: deref(e.RestartOnIsolation),
			StopTimeout:        duration(e.StopTimeout),
			RestartBackoff:     duration(e.RestartBackoff),
			MaxRestartBackoff:  duration(e.MaxRestartBackoff),
			User:               deref(e.User),
			PassEnv:            e.PassEnv,
		}
	}
	if p := h.Probe; p != nil {
		cfg.Health.Probe = &Probe{
			URL:      deref(p.URL),
			Interval: duration(p.Interval),
			Timeout:  duration(p.Timeout),
		}
	}
	for name, n := range fc.Notify {
		cfg.Notify[name] = Notify{
			Name:    name,
			Webhook: deref(n.Webhook),
			Headers: n.Headers,
			Timeout: duration(n.Timeout),
			Retries: deref(n.Retries),
		}
	}
	for name, b := range fc.Breaker {
		cfg.Breakers[name] = resolveBreaker(name, b)
	}
	for name, b := range fc.Budget {
		if cfg.Budgets == nil {
			cfg.Budgets = make(map[string]Budget, len(fc.Budget))
		}
		cfg.Budgets[name] = resolveBudget(name, b)
	}
	for name, u := range fc.Upstream {
		cfg.Upstreams[name] = Upstream{
			Name:          name,
			Service:       deref(u.Service),
			URL:           deref(u.URL),
			Tags:          u.Tags,
			Filter:        deref(u.Filter),
			Breaker:       deref(u.Breaker),
			Timeout:       duration(u.Timeout),
			Retries:       deref(u.Retries),
			Fallback:      u.Fallback,
			Balance:       deref(u.Balance),
			MaxConcurrent: deref(u.MaxConcurrent),

			IngressToken:      deref(u.IngressToken),
			IngressTokenEmpty: u.IngressToken != nil && *u.IngressToken == "",
		}
	}
	if in := fc.Ingress; in != nil {
		cfg.Ingress = &Ingress{
			Address:  deref(in.Address),
			Breaker:  deref(in.Breaker),
			Timeout:  duration(in.Timeout),
			Fallback: in.Fallback,

			Token:           deref(in.Token),
			MaxConnections:  deref(in.MaxConnections),
			BodyReadTimeout: duration(in.BodyReadTimeout),
		}
		cfg.Ingress.MaxConcurrent = deref(in.MaxConcurrent)
	}
	for label, m := range fc.Model {
		queue := duration(m.QueueTimeout)
		if queue == 0 && (deref(m.MaxConcurrent) > 0 || deref(m.RPM) > 0) {
			queue = DefaultQueueTimeout
		}
		cfg.Models[label] = Model{
			Label:             label,
			Provider:          deref(m.Provider),
			BaseURL:           strings.TrimRight(deref(m.BaseURL), "/"),
			APIKey:            deref(m.APIKey),
			APIKeyEmpty:       m.APIKey != nil && *m.APIKey == "",
			Headers:           m.Headers,
			Name:              deref(m.Name),
			Breaker:           deref(m.Breaker),
			Timeout:           duration(m.Timeout),
			FirstByteTimeout:  duration(m.FirstByteTimeout),
			StreamIdleTimeout: duration(m.StreamIdleTimeout),
			Fallback:          deref(m.Fallback),
			ContextFallback:   deref(m.ContextFallback),
			MaxTokens:         deref(m.MaxTokens),
			MaxTokensField:    deref(m.MaxTokensField),
			DropFields:        m.DropFields,
			DegradeOn:         m.DegradeOn,
			EmbeddingSpace:    deref(m.EmbeddingSpace),
			MaxConcurrent:     deref(m.MaxConcurrent),
			RPM:               deref(m.RPM),
			QueueTimeout:      queue,
			Price:             resolvePrice(m.Price),
		}
	}
	return cfg
}

// resolvePrice returns the runtime price of a validated price block; nil
// when there is none.
func resolvePrice(p *priceFile) *Price {
	if p == nil {
		return nil
	}
	return &Price{
		Input:       deref(p.Input),
		Output:      deref(p.Output),
		CachedInput: deref(p.CachedInput),
		CacheWrite:  deref(p.CacheWrite),
	}
}

// deref returns *p, or the zero value when p is nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// duration parses a validated duration; an unset one is 0.
func duration(s *string) time.Duration {
	if s == nil {
		return 0
	}
	d, _ := time.ParseDuration(*s)
	return d
}

// BreakerDefaults returns the settings of a breaker block that sets nothing,
// as Load resolves it: those of the "default" breaker when no block changes
// them. Package breaker uses the settings it is given as they are; code that
// builds a Breaker by hand starts from this one.
func BreakerDefaults() Breaker {
	b := &breakerFile{}
	breakerDefaults(b)
	return resolveBreaker(DefaultBreaker, b)
}

// breakerDefaults fills the unset values of a breaker block.
func breakerDefaults(b *breakerFile) {
	setDefault(&b.ConsecutiveFailures, defaultConsecutiveFailures)
	setDefault(&b.FailureRate, defaultFailureRate)
	setDefault(&b.MinCalls, defaultMinCalls)
	setDefault(&b.Window, defaultWindow)
	setDefault(&b.OpenFor, defaultOpenFor)
	setDefault(&b.MaxOpenFor, defaultMaxOpenFor)
	setDefault(&b.HalfOpenProbes, defaultHalfOpenProbes)
	if b.FailureStatuses == nil {
		b.FailureStatuses = defaultFailureStatuses()
	}
	setDefault(&b.SlowCall, defaultSlowCall)
}

// resolveBreaker turns a breaker block, its defaults applied and validated,
// into its settings.
func resolveBreaker(name string, b *breakerFile) Breaker {
	statuses, _ := expandStatuses(b.FailureStatuses)
	return Breaker{
		Name:                name,
		ConsecutiveFailures: deref(b.ConsecutiveFailures),
		FailureRate:         deref(b.FailureRate),
		MinCalls:            deref(b.MinCalls),
		Window:              duration(b.Window),
		OpenFor:             duration(b.OpenFor),
		MaxOpenFor:          duration(b.MaxOpenFor),
		HalfOpenProbes:      deref(b.HalfOpenProbes),
		FailureStatuses:     statuses,
		SlowCall:            duration(b.SlowCall),
	}
}
