package health

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

func TestHeartbeatNestedTooDeepIsRefused(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct{ name, body string }{
		{"brackets up to the body limit", strings.Repeat("[", MaxHeartbeatBody)},
		{"a deep metric", `{"status":"ok","metrics":{"x":` + deep(129) + `}}`},
		{"a deep progress", `{"progress":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat("}", 200) + `}`},
		{"a deep unknown field", `{"extra":` + deep(5000) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeartbeat([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), "heartbeat body is nested deeper than 128 levels of arrays and objects") {
				t.Fatalf("got %v, want an error naming the nesting limit", err)
			}
		})
	}
	// A body within the limit gets the usual checks
	if _, err := ParseHeartbeat([]byte(`{"metrics":{"x":` + deep(126) + `}}`)); err == nil ||
		!strings.Contains(err.Error(), `metric "x" must be a number`) {
		t.Fatalf("a metric nested within the limit: %v", err)
	}
}

// FuzzParseHeartbeat feeds arbitrary bodies to the heartbeat parser: no
// panic; a body it accepts yields a valid status and stays within the
// limits; a body it rejects gets a message a person can act on.
func FuzzParseHeartbeat(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"status":"degraded","note":"n","metrics":{"q":3,"ok":true,"m":"gpt"},"progress":12}`,
		`{"status":"great"}`, `{"metrics":{"x":{"y":1}}}`, `{"progress":[1]}`, `{} {}`, `{"note":"\ud800"}`,
		`{"metrics":{"n":1e999}}`, `null`, `[]`,
		`{"status":"ok","status":"failing"}`, `{"metrics":{"q":1,"q":"x"}}`,
		`{"metrics":{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`,
		`{"progress":` + strings.Repeat(`{"a":`, 129) + `1` + strings.Repeat("}", 129) + `}`,
		strings.Repeat("[", 60_000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		hb, err := ParseHeartbeat(body)
		var deep *jsonguard.Error
		if _, serr := jsonguard.Scan(body, jsonguard.MaxDepth); errors.As(serr, &deep) && deep.TooDeep &&
			(err == nil || !strings.Contains(err.Error(), "nested deeper than 128")) {
			t.Fatalf("a body nested deeper than the limit got %v: %q", err, body)
		}
		if err != nil {
			msg := err.Error()
			if msg == "" || !utf8.ValidString(msg) {
				t.Fatalf("unusable error %q for %q", msg, body)
			}
			return
		}
		switch hb.Status {
		case ReportOK, ReportDegraded, ReportFailing:
		default:
			t.Fatalf("accepted status %q from %q", hb.Status, body)
		}
		if len(hb.Note) > maxNoteLen || len(hb.Metrics) > maxMetrics {
			t.Fatalf("accepted a heartbeat over the limits from %q", body)
		}
	})
}
