package sidecar

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestHeartbeatNestedTooDeepIsRefused(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct{ name, body string }{
		{"brackets up to the body limit", strings.Repeat("[", maxHeartbeatBody)},
		{"a deep metric", `{"status":"ok","metrics":{"x":` + deep(129) + `}}`},
		{"a deep progress", `{"progress":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat("}", 200) + `}`},
		{"a deep unknown field", `{"extra":` + deep(5000) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHeartbeat([]byte(tc.body))
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusBadRequest ||
				!strings.Contains(he.msg, "heartbeat body is nested deeper than 128 levels of arrays and objects") {
				t.Fatalf("got %v, want a 400 naming the nesting limit", err)
			}
		})
	}
	// A body within the limit gets the usual checks
	if _, err := parseHeartbeat([]byte(`{"metrics":{"x":` + deep(126) + `}}`)); err == nil ||
		!strings.Contains(err.Error(), `metric "x" must be a number`) {
		t.Fatalf("a metric nested within the limit: %v", err)
	}
}
