// Package report is the state a sidecar keeps in Consul KV for `sidecar
// fleet`: one small JSON document per agent instance, written when the
// state changes. Consul's check outputs are written for people and reach
// the servers only every check_update_interval (5 minutes by default); this
// document is structured and written at once, so a fleet view is fresh.
//
// Encode and Decode are the only way to write and read it.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// MaxBytes bounds a report read back from Consul KV (anyone with write
// access to the prefix may put anything there).
const MaxBytes = 16 << 10

// Report is one agent instance's state as its sidecar sees it.
type Report struct {
	Agent string `json:"agent"` // the Consul service name
	ID    string `json:"id"`    // the Consul service ID
	// Updated is when the sidecar wrote the report.
	Updated time.Time `json:"updated"`
	// LastHeartbeat is the last sign of life: a heartbeat or a passing
	// probe. Nil before the first.
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	Isolated      bool       `json:"isolated"`
	// OpenBreakers names the breakers that are not closed, sorted.
	OpenBreakers []string `json:"open_breakers,omitempty"`
	// Degraded names the model chains served by a fallback model, sorted.
	Degraded []string `json:"degraded,omitempty"`
	// Answered1h is the share of calls and tasks answered (first choice or
	// fallback) over the last hour; nil without traffic.
	Answered1h *float64 `json:"answered_1h,omitempty"`
	// SpendToday is what the agent's model calls cost on the current UTC
	// day; nil when none reported usage that day (and in reports of
	// sidecars that do not count usage).
	SpendToday *Spend `json:"spend_today,omitempty"`
}

// Spend is an agent's model usage over one UTC day.
type Spend struct {
	Day     string  `json:"day"`      // e.g. "2026-12-02"
	CostUSD float64 `json:"cost_usd"` // US dollars, at the prices of the models' price blocks
	Tokens  int64   `json:"tokens"`   // input, output, cached input and cache-write tokens together
}

// Key is where the report of the instance id lives under prefix.
func Key(prefix, id string) string { return prefix + id }

// Encode is the document written to Consul KV.
func Encode(r Report) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a Report of plain fields always marshals
	}
	return b
}

// Decode reads a document written by Encode, refusing one that is too
// large or too deeply nested before it is parsed.
func Decode(b []byte) (Report, error) {
	var r Report
	if len(b) > MaxBytes {
		return r, fmt.Errorf("report of %d bytes, more than the %d a sidecar writes", len(b), MaxBytes)
	}
	if _, err := jsonguard.Scan(b, jsonguard.MaxDepth); err != nil {
		return r, fmt.Errorf("report is not valid JSON: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	if r.ID == "" {
		return r, errors.New("report without an id")
	}
	return r, nil
}

// Same says whether a and b differ only in when they were written.
func Same(a, b Report) bool {
	a.Updated, b.Updated = time.Time{}, time.Time{}
	return a.Agent == b.Agent && a.ID == b.ID && timesEqual(a.LastHeartbeat, b.LastHeartbeat) &&
		a.Isolated == b.Isolated && slices.Equal(a.OpenBreakers, b.OpenBreakers) &&
		slices.Equal(a.Degraded, b.Degraded) && ratiosEqual(a.Answered1h, b.Answered1h) &&
		spendsEqual(a.SpendToday, b.SpendToday)
}

// Urgent says whether b changes something an operator acts on (isolation,
// breakers, degradation) compared with a: such a change is written at once,
// while a newer heartbeat time or answered share may wait for the next
// periodic write.
func Urgent(a, b Report) bool {
	return a.Isolated != b.Isolated || !slices.Equal(a.OpenBreakers, b.OpenBreakers) ||
		!slices.Equal(a.Degraded, b.Degraded) || (a.LastHeartbeat == nil) != (b.LastHeartbeat == nil)
}

func timesEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// spendsEqual compares spends to the tenth of a cent, so a report is not
// rewritten for a change nobody would see.
func spendsEqual(a, b *Spend) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Day == b.Day && a.Tokens == b.Tokens && math.Round(a.CostUSD*1000) == math.Round(b.CostUSD*1000)
}

func ratiosEqual(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return Percent(*a) == Percent(*b)
}

// Percent prints a ratio as a percentage that never rounds up to 100%, the
// way the sidecar check and `sidecar fleet` show it.
func Percent(r float64) string {
	p := math.Floor(r*1000) / 10
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}
