package policies

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// statusRange lists the statuses first to last, inclusive.
func statusRange(first, last int) []int {
	var out []int
	for c := first; c <= last; c++ {
		out = append(out, c)
	}
	return out
}

// defaultBreaker is a breaker with every default.
func defaultBreaker(name string) Breaker {
	return Breaker{
		Name:                name,
		ConsecutiveFailures: 3,
		MinCalls:            10,
		Window:              time.Minute,
		OpenFor:             30 * time.Second,
		MaxOpenFor:          10 * time.Minute,
		HalfOpenProbes:      1,
		FailureStatuses:     append([]int{429}, statusRange(500, 599)...),
	}
}

// loadDiagnostics loads path, which must fail, and returns its diagnostics.
func loadDiagnostics(t *testing.T, path string) Diagnostics {
	t.Helper()
	clearConsulEnv(t)
	cfg, err := Load(path)
	if cfg != nil {
		t.Errorf("got config %+v, want nil", cfg)
	}
	var diags Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("got error %T %v, want Diagnostics", err, err)
	}
	return diags
}

func TestIsFailureStatus(t *testing.T) {
	custom := defaultBreaker("custom")
	custom.FailureStatuses = []int{502, 503}
	none := defaultBreaker("none")
	none.FailureStatuses = []int{}
	tests := []struct {
		name    string
		breaker Breaker
		code    int
		want    bool
	}{
		{"default: too many requests", defaultBreaker("default"), 429, true},
		{"default: service unavailable", defaultBreaker("default"), 503, true},
		{"default: first server error", defaultBreaker("default"), 500, true},
		{"default: last server error", defaultBreaker("default"), 599, true},
		{"default: not found is the caller's fault", defaultBreaker("default"), 404, false},
		{"default: ok", defaultBreaker("default"), 200, false},
		{"default: out of range", defaultBreaker("default"), 600, false},
		{"default: zero", defaultBreaker("default"), 0, false},
		{"custom: listed", custom, 502, true},
		{"custom: not listed", custom, 500, false},
		{"custom: above the list", custom, 504, false},
		{"empty list", none, 503, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.breaker.IsFailureStatus(tt.code); got != tt.want {
				t.Errorf("IsFailureStatus(%d): got %t, want %t", tt.code, got, tt.want)
			}
		})
	}
}

func BenchmarkIsFailureStatus(b *testing.B) {
	br := defaultBreaker("default")
	codes := []int{200, 404, 429, 503, 599}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if br.IsFailureStatus(codes[i%len(codes)]) {
			n++
		}
	}
	if n == 0 {
		b.Fatal("no status counted as a failure")
	}
}

func TestIsFailureStatusAllocatesNothing(t *testing.T) {
	br := defaultBreaker("default")
	if allocs := testing.AllocsPerRun(100, func() { br.IsFailureStatus(503) }); allocs != 0 {
		t.Errorf("got %v allocations per call, want 0", allocs)
	}
}

func TestExpandStatuses(t *testing.T) {
	tests := []struct {
		name        string
		in          []any
		want        []int
		wantProblem string
	}{
		{"default", []any{429, "5xx"}, append([]int{429}, statusRange(500, 599)...), ""},
		{"sorted, duplicates merged", []any{503, "5xx", 502, 429, 503}, append([]int{429}, statusRange(500, 599)...), ""},
		{"class in capitals, number as a string", []any{"4XX", "503"}, append(statusRange(400, 499), 503), ""},
		{"empty: only transport errors count", []any{}, []int{}, ""},
		{"unknown string", []any{429, "abc"}, nil, `element 2 must be a status number or a class like "5xx", got "abc"`},
		{"number out of range", []any{99}, nil, "element 1 must be a status number between 100 and 599, got 99"},
		{"number string out of range", []any{"600"}, nil, `element 1 must be a status number between 100 and 599, got "600"`},
		{"success class", []any{"2xx"}, nil, `element 1: the class "2xx" cannot count as failures: use "4xx" or "5xx"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problem := expandStatuses(tt.in)
			if problem != tt.wantProblem {
				t.Errorf("problem: got %q, want %q", problem, tt.wantProblem)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompactStatuses(t *testing.T) {
	tests := []struct {
		name string
		in   []int
		want []any
	}{
		{"default", append([]int{429}, statusRange(500, 599)...), []any{429, "5xx"}},
		{"both classes", statusRange(400, 599), []any{"4xx", "5xx"}},
		{"incomplete class", []int{500, 502, 503}, []any{500, 502, 503}},
		{"empty", []int{}, []any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compactStatuses(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBreakersOfTheSameFileAreDeepEqual(t *testing.T) {
	// The runtime keeps a breaker's state across a reload when its settings
	// are unchanged, comparing them with reflect.DeepEqual.
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_HOOK_TOKEN", "x")

	first, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	second, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	for name, b := range first.Breakers {
		if !reflect.DeepEqual(b, second.Breakers[name]) {
			t.Errorf("breaker %q: got %+v and %+v", name, b, second.Breakers[name])
		}
	}
}

func TestBreakerDefaults(t *testing.T) {
	// A breaker block that sets nothing, the "default" breaker of a file
	// without one, and BreakerDefaults are the same documented settings.
	want := defaultBreaker(DefaultBreaker)
	if got := BreakerDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("BreakerDefaults() = %+v, want %+v", got, want)
	}
	clearConsulEnv(t)
	if got := Dev().Breakers[DefaultBreaker]; !reflect.DeepEqual(got, want) {
		t.Errorf("Dev default breaker = %+v, want %+v", got, want)
	}

	// Each call returns its own statuses: changing one leaves the next alone.
	BreakerDefaults().FailureStatuses[0] = 999
	if got := BreakerDefaults().FailureStatuses[0]; got != 429 {
		t.Errorf("first failure status = %d after changing an earlier copy, want 429", got)
	}
}

func TestBreakerErrors(t *testing.T) {
	const dir = "testdata/invalid/"
	tests := []struct {
		name string
		path string
		want Diagnostics
	}{
		{
			name: "values out of range",
			path: dir + "breaker_values.hcl",
			want: Diagnostics{
				{Line: 7, Column: 3, Key: "breaker.default.consecutive_failures", Message: "must be at least 1, got 0"},
				{Line: 8, Column: 3, Key: "breaker.default.failure_rate",
					Message: "must be a percentage between 1 and 100 (0 turns the rate off), got 150"},
				{Line: 9, Column: 3, Key: "breaker.default.min_calls", Message: "must be at least 1, got 0"},
				{Line: 10, Column: 3, Key: "breaker.default.window",
					Message: `invalid duration "soon": use a number and a unit, e.g. "30s", "5m"`},
				{Line: 12, Column: 3, Key: "breaker.default.max_open_for",
					Message: "max_open_for (1m0s) is less than open_for (5m0s): the cap must be at least the first open period"},
				{Line: 13, Column: 3, Key: "breaker.default.half_open_probes", Message: "must be at least 1, got 0"},
				{Line: 14, Column: 3, Key: "breaker.default.failure_statuses",
					Message: `element 2 must be a status number or a class like "5xx", got "abc"`},
				{Line: 15, Column: 3, Key: "breaker.default.slow_call", Message: `must not be negative, got "-1s"`},
				// max_open_for is the default here: the error points at open_for.
				{Line: 19, Column: 3, Key: "breaker.fast.open_for",
					Message: "max_open_for (10m0s) is less than open_for (20m0s): the cap must be at least the first open period"},
				{Line: 20, Column: 3, Key: "breaker.fast.failure_statuses",
					Message: "element 2 must be a status number between 100 and 599, got 600"},
				{Line: 24, Column: 3, Key: "breaker.classes.failure_statuses",
					Message: `element 1: the class "2xx" cannot count as failures: use "4xx" or "5xx"`},
			},
		},
		{
			name: "failure_statuses of the wrong type",
			path: dir + "failure_statuses_types.hcl",
			want: Diagnostics{
				{Line: 6, Column: 3, Key: "breaker.a.failure_statuses",
					Message: `must be a list of numbers or strings, got string "5xx": write ["5xx"]`},
				{Line: 10, Column: 3, Key: "breaker.b.failure_statuses",
					Message: "must be a list of numbers or strings, but element 2 is bool true"},
				{Line: 14, Column: 3, Key: "breaker.c.failure_statuses",
					Message: "must be a list of whole numbers or strings, but element 1 is number 502.5"},
				{Line: 18, Column: 3, Key: "breaker.d.failure_statuses",
					Message: "must be a list of numbers or strings, got number 503: write [503]"},
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
