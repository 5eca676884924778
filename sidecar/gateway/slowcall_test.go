package gateway

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// paced streams four chunks and [DONE]: the first after first, each of the
// others after every.
func paced(first, every time.Duration) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i, e := range []string{chunk("a"), chunk("b"), chunk("c"), chunk("d"), "data: [DONE]\n\n"} {
			pause := every
			if i == 0 {
				pause = first
			}
			select {
			case <-time.After(pause):
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

func TestSlowCallOfAStreamIsItsTimeToFirstEvent(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, every time.Duration
		slow         bool
	}{
		// 0.6 s in all, but the first event at once: a good pace.
		{"fast first event, long stream", 0, 150 * time.Millisecond, false},
		{"slow first event, short stream", 300 * time.Millisecond, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Given a model breaker with slow_call 200ms
			primary := newScriptedModel(t, paced(tc.first, tc.every))
			lite := newScriptedModel(t, chatOK("from lite"))
			cfg := chainConfig(primary, lite, time.Minute)
			b := cfg.Breakers["default"]
			b.SlowCall = 200 * time.Millisecond
			cfg.Breakers["default"] = b
			base, g := gw(t, cfg)

			// When the agent reads a whole stream
			resp, events := readStream(t, base+"/v1/chat/completions",
				`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != http.StatusOK || len(events) != 5 {
				t.Fatalf("%s %q", resp.Status, events)
			}

			// Then the call is slow only when its first event was
			br, _ := g.opts.Breakers.Lookup(BreakerName("gpt-4o"))
			s := br.Snapshot()
			if got := s.Failures == 1; got != tc.slow || s.Calls != 1 {
				t.Errorf("slow: %v, want %v (breaker %+v)", got, tc.slow, s)
			}
		})
	}
}
