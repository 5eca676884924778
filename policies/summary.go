package policies

import "github.com/agent-sidecar/sidecar/internal/redact"

// redacted replaces a secret in summaries and messages.
const redacted = redact.Mark

// Summary returns the configuration as a JSON-friendly map for
// `GET /v1/status`, keyed like the file format. Secrets are redacted: the
// Consul token, the listen and ingress tokens and every upstream's
// ingress_token (shown as "<redacted>" when set, "" when not), a model's
// api_key (shown as "<redacted>" when set, left out when not), every notify,
// model and tracing header value, every exec environment value, the exec command's
// arguments (the program is shown, with the count of its arguments), the
// user information, query and fragment of URLs, and the path of webhook and
// probe URLs (shown as scheme://host/<redacted>). The Consul TLS files are shown
// by path (the key file's too), never by contents. Durations are strings
// such as "5m0s"; failure statuses are written as in the file, e.g. [429,
// "5xx"]; ingress is null when not configured; a model's price is shown
// only when it has one.
func (c *Config) Summary() map[string]any {
	agent := map[string]any{
		"name":    c.Agent.Name,
		"id":      c.Agent.ID,
		"address": c.Agent.Address,
		"port":    c.Agent.Port,
		"tags":    nonNil(c.Agent.Tags),
		"meta":    copyMap(c.Agent.Meta),
		"exec":    nil,
	}
	if e := c.Agent.Exec; e != nil {
		agent["exec"] = map[string]any{
			"command":              redact.Command(e.Command),
			"args":                 max(len(e.Command)-1, 0),
			"env":                  redactValues(e.Env),
			"dir":                  e.Dir,
			"restart":              e.Restart,
			"restart_on_isolation": e.RestartOnIsolation,
			"stop_timeout":         e.StopTimeout.String(),
			"restart_backoff":      e.RestartBackoff.String(),
			"max_restart_backoff":  e.MaxRestartBackoff.String(),
			"pass_env":             nonNil(e.PassEnv),
		}
	}

	token := ""
	if c.Consul.Token != "" {
		token = redacted
	}

	health := map[string]any{
		"heartbeat_interval": c.Health.HeartbeatInterval.String(),
		"missed_heartbeats":  c.Health.MissedHeartbeats,
		"grace":              c.Health.Grace.String(),
		"stall_after":        c.Health.StallAfter.String(),
		"liveness_after":     c.Health.LivenessAfter.String(),
		"ttl":                c.Health.TTL().String(),
		"notify":             nonNil(c.Health.Notify),
		"probe":              nil,
	}
	if p := c.Health.Probe; p != nil {
		health["probe"] = map[string]any{
			"url":      redact.URL(p.URL),
			"interval": p.Interval.String(),
			"timeout":  p.Timeout.String(),
		}
	}

	notify := make(map[string]any, len(c.Notify))
	for name, n := range c.Notify {
		notify[name] = map[string]any{
			"webhook": redact.URL(n.Webhook),
			"headers": redactValues(n.Headers),
			"timeout": n.Timeout.String(),
			"retries": n.Retries,
		}
	}

	breakers := make(map[string]any, len(c.Breakers))
	for name, b := range c.Breakers {
		breakers[name] = map[string]any{
			"consecutive_failures": b.ConsecutiveFailures,
			"failure_rate":         b.FailureRate,
			"min_calls":            b.MinCalls,
			"window":               b.Window.String(),
			"open_for":             b.OpenFor.String(),
			"max_open_for":         b.MaxOpenFor.String(),
			"half_open_probes":     b.HalfOpenProbes,
			"failure_statuses":     compactStatuses(b.FailureStatuses),
			"slow_call":            b.SlowCall.String(),
		}
	}

	upstreams := make(map[string]any, len(c.Upstreams))
	for name, u := range c.Upstreams {
		upstreams[name] = map[string]any{
			"service":        u.Service,
			"url":            redactURL(u.URL),
			"tags":           nonNil(u.Tags),
			"filter":         u.Filter,
			"breaker":        u.Breaker,
			"timeout":        u.Timeout.String(),
			"retries":        u.Retries,
			"fallback":       nonNil(u.Fallback),
			"balance":        u.Balance,
			"max_concurrent": u.MaxConcurrent,
			"ingress_token":  redactedIfSet(u.IngressToken),
		}
	}

	var ingress any // nil when not configured
	if in := c.Ingress; in != nil {
		ingress = map[string]any{
			"address":  in.Address,
			"breaker":  in.Breaker,
			"timeout":  in.Timeout.String(),
			"fallback": nonNil(in.Fallback),

			"token":             redactedIfSet(in.Token),
			"max_connections":   in.MaxConnections,
			"body_read_timeout": in.BodyReadTimeout.String(),
		}
		ingress.(map[string]any)["max_concurrent"] = in.MaxConcurrent
	}

	models := make(map[string]any, len(c.Models))
	for label, m := range c.Models {
		model := map[string]any{
			"provider":            m.Provider,
			"base_url":            redactURL(m.BaseURL),
			"headers":             redactValues(m.Headers),
			"name":                m.Name,
			"breaker":             m.Breaker,
			"timeout":             m.Timeout.String(),
			"first_byte_timeout":  m.FirstByteTimeout.String(),
			"stream_idle_timeout": m.StreamIdleTimeout.String(),
			"fallback":            m.Fallback,
			"max_tokens":          m.MaxTokens,
			"drop_fields":         nonNil(m.DropFields),
			"degrade_on":          nonNil(m.DegradeOn),
		}
		if m.APIKey != "" {
			model["api_key"] = redacted
		}
		// Shown when set, so a summary without them reads as before.
		if m.ContextFallback != "" {
			model["context_fallback"] = m.ContextFallback
		}
		if m.MaxTokensField != "" {
			model["max_tokens_field"] = m.MaxTokensField
		}
		if m.EmbeddingSpace != "" {
			model["embedding_space"] = m.EmbeddingSpace
		}
		if m.MaxConcurrent > 0 || m.RPM > 0 {
			model["max_concurrent"] = m.MaxConcurrent
			model["rpm"] = m.RPM
			model["queue_timeout"] = m.QueueTimeout.String()
		}
		if p := m.Price; p != nil {
			model["price"] = map[string]any{
				"input":        p.Input,
				"output":       p.Output,
				"cached_input": p.CachedInput,
				"cache_write":  p.CacheWrite,
			}
		}
		models[label] = model
	}
	gateway := map[string]any{"max_request_bytes": c.Gateway.MaxRequestBytes}
	logging := map[string]any{"level": c.Log.Level, "json": c.Log.JSON}

	out := map[string]any{
		"agent": agent,
		"log":   logging,
		"listen": map[string]any{
			"address":      c.Listen.Address,
			"allow_remote": c.Listen.AllowRemote,
			"token":        redactedIfSet(c.Listen.Token),
			"token_scope":  c.Listen.TokenScope,

			"allowed_hosts":     nonNil(c.Listen.AllowedHosts),
			"max_connections":   c.Listen.MaxConnections,
			"body_read_timeout": c.Listen.BodyReadTimeout.String(),
			"probe_address":     c.Listen.ProbeAddress,
		},
		"consul": map[string]any{
			"address":                   redactURL(c.Consul.Address),
			"token":                     token,
			"deregister_critical_after": c.Consul.DeregisterCriticalAfter.String(),
			"sync_interval":             c.Consul.SyncInterval.String(),
			// Paths only: the key file's contents are never read here.
			"ca_file":              c.Consul.CAFile,
			"cert_file":            c.Consul.CertFile,
			"key_file":             c.Consul.KeyFile,
			"tls_server_name":      c.Consul.TLSServerName,
			"insecure_skip_verify": c.Consul.InsecureSkipVerify,
		},
		"health":    health,
		"notify":    notify,
		"breakers":  breakers,
		"upstreams": upstreams,
		"ingress":   ingress,
		"models":    models,
		"gateway":   gateway,
		"sources":   nonNil(c.Sources),
		"tracing":   c.Tracing.summary(),
	}
	// Budgets and the state directory they keep their spend in show only
	// when a budget is configured.
	if len(c.Budgets) > 0 {
		out["budgets"] = budgetSummary(c.Budgets)
		agent["state_dir"] = c.Agent.StateDir
	}
	return out
}

// redactValues keeps the keys of m and replaces every value.
func redactValues(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = redacted
	}
	return out
}

// copyMap copies m, so a caller editing the summary cannot change the
// configuration; nil becomes an empty map.
func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// nonNil copies s; nil becomes an empty slice, so JSON shows [] rather than
// null.
func nonNil(s []string) []string {
	return append([]string{}, s...)
}

// redactedIfSet shows whether a secret is set without showing it.
func redactedIfSet(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}
