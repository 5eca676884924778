package guard

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/policies"
)

const (
	controlToken   = "planted-token-5f2a9c0d7e"
	heartbeatToken = "heartbeat-token-77c1e0b2"
)

func TestControlToken(t *testing.T) {
	type req struct {
		method, path string
		header       [2]string // a credential header and its value
		want         int
	}
	none := [2]string{}
	tok := [2]string{HeaderToken, controlToken}
	bearer := [2]string{"Authorization", "Bearer " + controlToken}
	apiKey := [2]string{"X-Api-Key", controlToken}
	hbTok := [2]string{HeaderToken, heartbeatToken}
	for _, tc := range []struct {
		name  string
		scope string
		reqs  []req
	}{
		{"scope all: every endpoint but /v1/health", policies.TokenAll, []req{
			{"GET", "/v1/health", none, http.StatusOK},
			{"GET", "/v1/status", none, http.StatusUnauthorized},
			{"GET", "/metrics", none, http.StatusUnauthorized},
			{"GET", "/call/up/x", none, http.StatusUnauthorized},
			{"POST", "/llm/v1/chat/completions", none, http.StatusUnauthorized},
			{"GET", "/v1/status", [2]string{HeaderToken, "wrong-token-0000000000"}, http.StatusUnauthorized},
			{"GET", "/v1/status", [2]string{"Authorization", "Bearer " + controlToken[:10]}, http.StatusUnauthorized},
			{"GET", "/v1/status", tok, http.StatusOK},
			{"GET", "/call/up/x", bearer, http.StatusOK},
			{"POST", "/llm/v1/chat/completions", apiKey, http.StatusOK},
			{"GET", "/v1/status", apiKey, http.StatusUnauthorized}, // x-api-key only under /llm/
			{"POST", "/v1/heartbeat", hbTok, http.StatusOK},
			{"POST", "/v1/reload", hbTok, http.StatusUnauthorized}, // the agent's token: heartbeats only
			{"GET", "/v1/status", hbTok, http.StatusUnauthorized},
		}},
		{"scope mutating: heartbeats, reloads, breaker actions", policies.TokenMutating, []req{
			{"GET", "/v1/status", none, http.StatusOK},
			{"GET", "/call/up/x", none, http.StatusOK},
			{"POST", "/v1/heartbeat", none, http.StatusUnauthorized},
			{"POST", "/v1/reload", none, http.StatusUnauthorized},
			{"POST", "/v1/breakers/x/open", none, http.StatusUnauthorized},
			{"POST", "/v1/heartbeat", tok, http.StatusOK},
			{"POST", "/v1/reload", bearer, http.StatusOK},
			{"POST", "/v1/heartbeat", hbTok, http.StatusOK},
			{"POST", "/v1/breakers/x/open", hbTok, http.StatusUnauthorized},
			{"POST", "/v1/reload", hbTok, http.StatusUnauthorized},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b, e := startControl(t, policies.Listen{Token: controlToken, TokenScope: tc.scope}, heartbeatToken)
			passed := int32(0)
			for _, r := range tc.reqs {
				q := e.Request(r.method, r.path)
				if r.header[0] != "" {
					q = q.WithHeader(r.header[0], r.header[1])
				}
				resp := q.Expect()
				resp.Status(r.want)
				if r.want == http.StatusUnauthorized {
					resp.Header("WWW-Authenticate").Contains("Bearer")
					resp.JSON().Object().Value("error").Object().HasValue("type", ErrUnauthorized)
				} else {
					passed++
				}
			}
			// The token is never passed on
			if got := b.calls.Load(); got != passed || strings.Contains(b.seen(), controlToken) ||
				strings.Contains(b.seen(), heartbeatToken) {
				t.Fatalf("%d requests got through (want %d), credential headers %q", got, passed, b.seen())
			}
		})
	}
}

// Without a token, nothing is asked for, and a stray token header is not
// passed on.
func TestNoTokenStripsTheHeader(t *testing.T) {
	_, b, e := startControl(t, policies.Listen{}, "")
	e.GET("/v1/status").WithHeader(HeaderToken, "stray-token-0123456789").Expect().Status(http.StatusOK)
	if strings.Contains(b.seen(), "stray-token") {
		t.Fatalf("a token header was passed on: %q", b.seen())
	}
}
