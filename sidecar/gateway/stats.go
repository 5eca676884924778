package gateway

import (
	"sort"
	"time"
)

// modelStats counts what happened to one model; guarded by Gateway.mu.
type modelStats struct {
	calls, failures, skipped, canceled, answers, fallbackAnswers int64
	lastFailure                                                  string
	// tokens its answers reported (see Usage)
	input, output, cachedInput, cacheWrite int64
	lastFailureAt                          time.Time
}

// ModelStatus is one model as status output shows it.
type ModelStatus struct {
	Label    string `json:"label"`
	Provider string `json:"provider"`
	Name     string `json:"name"`
	Fallback string `json:"fallback,omitempty"`
	Breaker  string `json:"breaker"` // the breaker's name in /v1/breakers
	// Calls are requests sent to the model; Failures those that failed;
	// Skipped those not sent because its breaker was open.
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
	Skipped  int64 `json:"skipped"`
	// Answers are answers it gave the agent, FallbackAnswers those it gave
	// in place of another model (degraded answers).
	Answers         int64      `json:"answers"`
	FallbackAnswers int64      `json:"fallback_answers"`
	LastFailure     string     `json:"last_failure,omitempty"`
	LastFailureAt   *time.Time `json:"last_failure_at,omitempty"`
	// Usage sums the tokens its answers reported; absent until one did.
	Usage *UsageTotals `json:"usage,omitempty"`
}

// Degradation is a chain currently served by a fallback model.
type Degradation struct {
	Model      string    `json:"model"`       // the model agents asked for
	ServedBy   string    `json:"served_by"`   // the model that answered last
	Since      time.Time `json:"since"`       // first degraded answer of this spell
	LastAnswer time.Time `json:"last_answer"` // latest degraded answer
	Reason     string    `json:"reason"`      // why the models before it did not answer
}

func (g *Gateway) count(label string, fn func(*modelStats)) {
	g.mu.Lock()
	s, ok := g.stats[label]
	if !ok {
		s = &modelStats{}
		g.stats[label] = s
	}
	fn(s)
	g.mu.Unlock()
}

// noteAnswer records whether the chain of model was served by a fallback.
func (g *Gateway) noteAnswer(model, servedBy string, degraded bool, reason string) {
	now := g.opts.Now()
	changed := false
	var ch Degradation
	g.mu.Lock()
	d, was := g.degraded[model]
	if was && now.Sub(d.LastAnswer) > degradedHold {
		was = false
	}
	switch {
	case degraded && was:
		d.ServedBy, d.LastAnswer, d.Reason = servedBy, now, reason
	case degraded:
		d = &Degradation{Model: model, ServedBy: servedBy, Since: now, LastAnswer: now, Reason: reason}
		g.degraded[model] = d
		ch, changed = *d, true
	case was:
		delete(g.degraded, model)
		ch, changed = *d, true
	}
	g.mu.Unlock()
	if changed && g.opts.OnDegradedChange != nil {
		g.opts.OnDegradedChange(ch, degraded)
	}
}

// Degraded lists the chains served by a fallback model now: their latest
// answer came from a fallback, less than five minutes ago.
func (g *Gateway) Degraded() []Degradation {
	now := g.opts.Now()
	g.mu.Lock()
	var out []Degradation
	for _, d := range g.degraded {
		if now.Sub(d.LastAnswer) <= degradedHold {
			out = append(out, *d)
		}
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// Models returns every configured model with its counts.
func (g *Gateway) Models() []ModelStatus {
	st := g.state.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ModelStatus, 0, len(st.labels))
	for _, label := range st.labels {
		m := st.models[label]
		ms := ModelStatus{Label: label, Provider: m.Provider, Name: m.Name, Fallback: m.Fallback, Breaker: BreakerName(label)}
		if s, ok := g.stats[label]; ok {
			ms.Calls, ms.Failures, ms.Skipped = s.calls, s.failures, s.skipped
			ms.Answers, ms.FallbackAnswers, ms.LastFailure = s.answers, s.fallbackAnswers, s.lastFailure
			if !s.lastFailureAt.IsZero() {
				at := s.lastFailureAt
				ms.LastFailureAt = &at
			}
			if t := (UsageTotals{s.input, s.output, s.cachedInput, s.cacheWrite}); t != (UsageTotals{}) {
				ms.Usage = &t
			}
		}
		out = append(out, ms)
	}
	return out
}
