package budget

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// t0 is 10:00 UTC on a day: the daily window started 10 hours ago, the
// hourly one now.
var t0 = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

func TestWindowStart(t *testing.T) {
	tests := []struct {
		now    time.Time
		window time.Duration
		want   time.Time
	}{
		{t0.Add(25 * time.Minute), time.Hour, t0},
		{t0.Add(13*time.Hour + 59*time.Minute), 24 * time.Hour, time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)},
		{t0.Add(14 * time.Hour), 24 * time.Hour, time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)},
		{t0.Add(7 * time.Minute), 6 * time.Hour, time.Date(2030, 1, 2, 6, 0, 0, 0, time.UTC)},
		{t0.Add(90 * time.Second), time.Minute, t0.Add(time.Minute)},
		// A week is aligned to the Unix epoch, a Thursday.
		{t0, 168 * time.Hour, time.Date(2029, 12, 27, 0, 0, 0, 0, time.UTC)},
		// The local zone does not move the windows.
		{t0.In(time.FixedZone("UTC+5", 5*3600)), 24 * time.Hour, time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.window.String()+" at "+tt.now.Format(time.RFC3339), func(t *testing.T) {
			if got := WindowStart(tt.now, tt.window); !got.Equal(tt.want) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// types lists the event types of transitions.
func types(trs []Transition) []string {
	var out []string
	for _, tr := range trs {
		out = append(out, tr.Type)
	}
	return out
}

func TestRecordTransitionsOncePerWindow(t *testing.T) {
	// Given a daily budget of 1000 tokens, warning at 80 %
	midnight := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	l := New(map[string]policies.Budget{"daily": {Window: 24 * time.Hour, Tokens: 1000, Action: policies.BudgetReject, WarnAt: 80}})
	steps := []struct {
		name   string
		at     time.Time
		tokens int64
		want   []string
	}{
		// Late in the day, so that the rate of spend does not raise budget.burning.
		{"below the warning", midnight.Add(-10 * time.Minute), 100, nil},
		{"past 80 %", midnight.Add(-30 * time.Second), 700, []string{EventWarning}},
		{"still warned", midnight.Add(-20 * time.Second), 10, nil},
		{"the limit", midnight.Add(-10 * time.Second), 190, []string{EventExceeded}},
		{"beyond it", midnight.Add(-10 * time.Second), 500, nil},
		{"the next day starts afresh", midnight.Add(24*time.Hour - 10*time.Minute), 100, nil},
		{"and warns again the day after", midnight.Add(48*time.Hour - 30*time.Second), 850, []string{EventWarning}},
	}
	for _, s := range steps {
		got := types(l.Record(s.at, "gpt-4o", s.tokens, 0))
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
}

func TestRecordBurningAlarm(t *testing.T) {
	// Given $10 a day, at 10:00 UTC (14 hours left)
	l := New(map[string]policies.Budget{"daily": {Window: 24 * time.Hour, CostUSD: 10, Action: policies.BudgetReject}})
	// $0.01 in five minutes: $1.68 by midnight, fine
	if got := l.Record(t0, "gpt-4o", 0, 0.01); len(got) != 0 {
		t.Fatalf("slow spend: got %v, want nothing", types(got))
	}
	// $0.10 more within five minutes: $0.11 per 5 min is $18.48 by midnight
	got := l.Record(t0.Add(2*time.Minute), "gpt-4o", 0, 0.10)
	if !reflect.DeepEqual(types(got), []string{EventBurning}) {
		t.Fatalf("fast spend: got %v, want [budget.burning]", types(got))
	}
	if !strings.Contains(got[0].Text, `budget "daily" is burning`) || !got[0].ResetsAt.Equal(time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("transition = %+v", got[0])
	}
	if got := l.Record(t0.Add(3*time.Minute), "gpt-4o", 0, 0.10); len(got) != 0 {
		t.Errorf("burning again in the same window: got %v, want nothing", types(got))
	}
}

func TestAdmit(t *testing.T) {
	budgets := map[string]policies.Budget{
		"hourly-gpt-4o": {Window: time.Hour, Tokens: 100, Action: policies.BudgetDegrade, DegradeTo: "gpt-4o-mini",
			Models: []string{"gpt-4o"}},
		"daily": {Window: 24 * time.Hour, CostUSD: 1, Action: policies.BudgetReject},
	}
	tests := []struct {
		name         string
		spend        func(l *Ledger)
		model        string
		wantReject   bool
		wantDegrade  string
		wantRetry    time.Duration
		reasonPrefix string
	}{
		{name: "nothing spent", spend: func(*Ledger) {}, model: "gpt-4o"},
		{name: "hourly tokens spent: degrade", model: "gpt-4o", wantDegrade: "gpt-4o-mini",
			spend: func(l *Ledger) { l.Record(t0.Add(time.Minute), "gpt-4o", 100, 0) }},
		{name: "another model is not limited by the hourly budget", model: "claude",
			spend: func(l *Ledger) { l.Record(t0.Add(time.Minute), "gpt-4o", 100, 0) }},
		{name: "the daily money spent: reject until midnight, over degrading", model: "gpt-4o", wantReject: true,
			wantRetry: 14*time.Hour - 30*time.Minute, reasonPrefix: `budget "daily" is spent ($1.00 of $1.00 this 24h0m0s window)`,
			spend: func(l *Ledger) { l.Record(t0.Add(time.Minute), "gpt-4o", 100, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(budgets)
			tt.spend(l)
			got := l.Admit(t0.Add(30*time.Minute), tt.model)
			if got.Reject != tt.wantReject || got.DegradeTo != tt.wantDegrade || got.RetryAfter != tt.wantRetry ||
				!strings.HasPrefix(got.Reason, tt.reasonPrefix) {
				t.Errorf("got %+v, want reject %v degrade %q retry %s reason %q…", got, tt.wantReject, tt.wantDegrade,
					tt.wantRetry, tt.reasonPrefix)
			}
		})
	}
	// The hour after, the hourly budget has reset
	l := New(budgets)
	l.Record(t0, "gpt-4o", 100, 0)
	if got := l.Admit(t0.Add(time.Hour), "gpt-4o"); got.DegradeTo != "" {
		t.Errorf("next hour: got %+v, want the request to go ahead", got)
	}
}

func TestStatuses(t *testing.T) {
	l := New(map[string]policies.Budget{
		"daily":  {Window: 24 * time.Hour, CostUSD: 10, Tokens: 1000, Action: policies.BudgetReject, WarnAt: 80},
		"hourly": {Window: time.Hour, Tokens: 100, Action: policies.BudgetReject},
	})
	l.Record(t0, "gpt-4o", 850, 1.5)
	got := l.Statuses(t0.Add(time.Minute))
	want := []Status{
		{Name: "daily", Window: "24h0m0s", Action: "reject", Spent: Spend{CostUSD: 1.5, Tokens: 850}, Limit: Spend{CostUSD: 10, Tokens: 1000},
			Left: Spend{CostUSD: 8.5, Tokens: 150}, ResetsAt: time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC), State: StateWarning},
		{Name: "hourly", Window: "1h0m0s", Action: "reject", Spent: Spend{CostUSD: 1.5, Tokens: 850}, Limit: Spend{Tokens: 100},
			ResetsAt: t0.Add(time.Hour), State: StateExceeded},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestSetBudgetsKeepsSpendOfUnchangedWindows(t *testing.T) {
	l := New(map[string]policies.Budget{"a": {Window: time.Hour, Tokens: 100}, "b": {Window: time.Hour, Tokens: 100}})
	l.Record(t0, "m", 40, 0)
	l.SetBudgets(map[string]policies.Budget{"a": {Window: time.Hour, Tokens: 50}, "b": {Window: 2 * time.Hour, Tokens: 100}})
	st := l.Statuses(t0)
	if st[0].Spent.Tokens != 40 || st[1].Spent.Tokens != 0 {
		t.Errorf("spent: a %d (same window), b %d (new window); want 40 and 0", st[0].Spent.Tokens, st[1].Spent.Tokens)
	}
}
