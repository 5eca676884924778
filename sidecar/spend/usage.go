package spend

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
)

// Token types, the type label of sidecar_model_tokens_total and the keys of
// a model's usage in GET /v1/status.
const (
	TokensInput       = "input"
	TokensOutput      = "output"
	TokensCachedInput = "cached_input"
	TokensCacheWrite  = "cache_write"
)

// dayLayout is how a UTC day is written in status and the fleet report.
const dayLayout = "2006-01-02"

// UsageToday is the token usage and cost counted since the start of the
// current UTC day, for GET /v1/status.
type UsageToday struct {
	Day string `json:"day"` // the UTC day, e.g. "2026-12-02"
	// Models are the totals by the model that served the answers (a
	// degraded answer counts against its fallback).
	Models       map[string]ModelUsage `json:"models"`
	TotalCostUSD float64               `json:"total_cost_usd"`
}

// ModelUsage is one model's usage over a day.
type ModelUsage struct {
	Answers     int64   `json:"answers"` // answers whose usage was reported
	Input       int64   `json:"input"`
	Output      int64   `json:"output"`
	CachedInput int64   `json:"cached_input"`
	CacheWrite  int64   `json:"cache_write"`
	CostUSD     float64 `json:"cost_usd"`
	// Priced says every answer counted had a price; false when the model
	// had no price block for some (their tokens cost nothing here).
	Priced bool `json:"priced"`
}

// Tokens is the model's tokens of every type together.
func (u ModelUsage) Tokens() int64 { return u.Input + u.Output + u.CachedInput + u.CacheWrite }

// usageCost is what u costs at price p, in US dollars; ok is false when the
// model has no price.
func usageCost(p *policies.Price, u gateway.Usage) (usd float64, ok bool) {
	if p == nil {
		return 0, false
	}
	sum := float64(u.Input)*p.Input + float64(u.Output)*p.Output +
		float64(u.CachedInput)*p.CachedInput + float64(u.CacheWrite)*p.CacheWrite
	return sum / 1e6, true
}

// accountant turns the usage of each answer into Prometheus counters and
// the totals of the current UTC day. It is safe for concurrent use.
type accountant struct {
	now    func() time.Time
	tokens *prometheus.CounterVec // model, served_by, type
	cost   *prometheus.CounterVec // model, served_by

	mu     sync.Mutex
	day    string
	models map[string]*ModelUsage // by serving model
}

// record counts one answer's usage, none of its counts below 0, at price
// (nil: the serving model has none), and returns its cost in US dollars (0
// without a price).
func (a *accountant) record(u gateway.Usage, price *policies.Price) float64 {
	usd, priced := usageCost(price, u)

	for _, t := range []struct {
		typ string
		n   int64
	}{{TokensInput, u.Input}, {TokensOutput, u.Output}, {TokensCachedInput, u.CachedInput}, {TokensCacheWrite, u.CacheWrite}} {
		if t.n > 0 {
			a.tokens.WithLabelValues(u.Model, u.ServedBy, t.typ).Add(float64(t.n))
		}
	}
	if priced {
		a.cost.WithLabelValues(u.Model, u.ServedBy).Add(usd)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.rollover()
	m := a.models[u.ServedBy]
	if m == nil {
		m = &ModelUsage{Priced: true}
		a.models[u.ServedBy] = m
	}
	m.Answers++
	m.Input += u.Input
	m.Output += u.Output
	m.CachedInput += u.CachedInput
	m.CacheWrite += u.CacheWrite
	m.CostUSD += usd
	m.Priced = m.Priced && priced
	return usd
}

// rollover starts a new day's totals when the UTC day has changed. Called
// with a.mu held.
func (a *accountant) rollover() {
	if day := a.now().UTC().Format(dayLayout); day != a.day {
		a.day = day
		clear(a.models)
	}
}

// today returns the totals of the current UTC day; nil when nothing has
// been counted today.
func (a *accountant) today() *UsageToday {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rollover()
	if len(a.models) == 0 {
		return nil
	}
	out := &UsageToday{Day: a.day, Models: make(map[string]ModelUsage, len(a.models))}
	labels := make([]string, 0, len(a.models))
	for label, m := range a.models {
		out.Models[label] = *m
		labels = append(labels, label)
	}
	slices.Sort(labels) // the same sum, to the last bit, for the same totals
	for _, label := range labels {
		out.TotalCostUSD += a.models[label].CostUSD
	}
	return out
}
