package budget

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

func TestStateSurvivesAWriteAndRead(t *testing.T) {
	budgets := map[string]policies.Budget{
		"daily":  {Window: 24 * time.Hour, Tokens: 1000, WarnAt: 80},
		"hourly": {Window: time.Hour, Tokens: 1000},
	}
	l := New(budgets)
	l.Record(t0, "m", 900, 0.5)
	path := filepath.Join(t.TempDir(), "state", FileName)
	if err := WriteState(path, l.Snapshot()); err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"same windows", t0.Add(30 * time.Minute), []string{"daily", "hourly"}},
		{"the hour has passed", t0.Add(time.Hour), []string{"daily"}},
		{"the day has passed", t0.Add(14 * time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := New(budgets)
			got := next.Restore(st, tt.at)
			if len(got) > 1 && got[0] > got[1] {
				got[0], got[1] = got[1], got[0]
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("restored %v, want %v", got, tt.want)
			}
			// A restored budget does not warn again in the same window.
			if tr := next.Record(tt.at, "m", 1, 0); len(tt.want) == 2 && len(tr) != 0 {
				t.Errorf("after restore: got %v, want no transition", types(tr))
			}
		})
	}
}

func TestReadStateOfABadFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{"missing", "", false},
		{"not JSON", "{budgets: nope", true},
		{"another version", `{"version": 9, "budgets": {}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			st, err := ReadState(path)
			if (err != nil) != tt.wantErr || len(st.Budgets) != 0 {
				t.Errorf("got %+v, %v; want an error: %v", st, err, tt.wantErr)
			}
		})
	}
}
