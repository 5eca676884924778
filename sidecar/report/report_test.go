package report

import (
	"strings"
	"testing"
	"time"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	beat := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	ratio := 0.995
	for _, r := range []Report{
		{Agent: "writer", ID: "writer-1", Updated: beat.Add(time.Second)},
		{Agent: "writer", ID: "writer-2", Updated: beat, LastHeartbeat: &beat, Isolated: true,
			OpenBreakers: []string{"model:gpt-4o", "upstream:researcher"}, Degraded: []string{"gpt-4o"}, Answered1h: &ratio,
			SpendToday: &Spend{Day: "2026-12-02", CostUSD: 12.345, Tokens: 4_200_000}},
	} {
		got, err := Decode(Encode(r))
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", r, err)
		}
		if !Same(got, r) || !got.Updated.Equal(r.Updated) {
			t.Errorf("round trip changed the report:\n got %+v\nwant %+v", got, r)
		}
		if (got.SpendToday == nil) != (r.SpendToday == nil) || (got.SpendToday != nil && *got.SpendToday != *r.SpendToday) {
			t.Errorf("spend %+v, want %+v", got.SpendToday, r.SpendToday)
		}
	}
}

func TestEncodedSpend(t *testing.T) {
	r := Report{Agent: "writer", ID: "w", SpendToday: &Spend{Day: "2026-12-02", CostUSD: 1.5, Tokens: 300}}
	if got, want := string(Encode(r)), `"spend_today":{"day":"2026-12-02","cost_usd":1.5,"tokens":300}`; !strings.Contains(got, want) {
		t.Errorf("encoded %s, want it to hold %s", got, want)
	}
	if got := string(Encode(Report{Agent: "writer", ID: "w"})); strings.Contains(got, "spend") {
		t.Errorf("a report without spend encodes %s, want no spend key", got)
	}
}

func TestDecodeAReportOfAnOlderSidecar(t *testing.T) {
	// Written by a sidecar that did not count usage.
	old := `{"agent":"writer","id":"writer-1","updated":"2026-06-01T12:00:00Z","isolated":false,"answered_1h":0.99}`
	r, err := Decode([]byte(old))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if r.ID != "writer-1" || r.SpendToday != nil || r.Answered1h == nil || *r.Answered1h != 0.99 {
		t.Errorf("got %+v, want writer-1 without spend", r)
	}
}

func TestDecodeRefusesHostileDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"too large":  `{"id":"a","agent":"` + strings.Repeat("x", MaxBytes) + `"}`,
		"too deep":   `{"id":"a","x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		"not JSON":   `{"id":`,
		"no id":      `{"agent":"writer"}`,
		"wrong type": `{"id":"a","isolated":"yes"}`,
	} {
		if _, err := Decode([]byte(doc)); err == nil {
			t.Errorf("%s: Decode accepted it", name)
		}
	}
}

func TestUrgentChanges(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	base := Report{Agent: "writer", ID: "w", LastHeartbeat: &t0}
	cases := []struct {
		name   string
		change func(r *Report)
		urgent bool
		same   bool
	}{
		{"nothing", func(*Report) {}, false, true},
		{"only written later", func(r *Report) { r.Updated = t1 }, false, true},
		{"newer heartbeat", func(r *Report) { r.LastHeartbeat = &t1 }, false, false},
		{"answered share", func(r *Report) { v := 0.5; r.Answered1h = &v }, false, false},
		{"isolated", func(r *Report) { r.Isolated = true }, true, false},
		{"breaker opened", func(r *Report) { r.OpenBreakers = []string{"upstream:x"} }, true, false},
		{"degraded", func(r *Report) { r.Degraded = []string{"gpt-4o"} }, true, false},
		{"spend", func(r *Report) { r.SpendToday = &Spend{Day: "2026-12-02", CostUSD: 0.5, Tokens: 10} }, false, false},
	}
	for _, c := range cases {
		next := base
		c.change(&next)
		if got := Urgent(base, next); got != c.urgent {
			t.Errorf("%s: Urgent = %v, want %v", c.name, got, c.urgent)
		}
		if got := Same(base, next); got != c.same {
			t.Errorf("%s: Same = %v, want %v", c.name, got, c.same)
		}
	}
}

func TestPercentNeverRoundsUpTo100(t *testing.T) {
	for r, want := range map[float64]string{1: "100%", 0.9999: "99.9%", 0.995: "99.5%", 0.5: "50%", 0: "0%"} {
		if got := Percent(r); got != want {
			t.Errorf("Percent(%v) = %q, want %q", r, got, want)
		}
	}
}
