package guard

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/agent-sidecar/sidecar/policies"
)

// HeaderToken carries the control listener's token; Authorization: Bearer
// (what the OpenAI SDKs send with OPENAI_API_KEY) and, under /llm/,
// x-api-key (the Anthropic SDKs) are taken too.
const HeaderToken = "X-Sidecar-Token"

// authorize checks a request against the control listener's token and
// removes the token from its headers, so it is never forwarded. It answers
// 401 itself and returns false when the request may not go on.
func authorize(w http.ResponseWriter, r *http.Request, l policies.Listen, heartbeatToken string) bool {
	if l.Token == "" || r.URL.Path == "/v1/health" {
		stripToken(r, l.Token)
		return true
	}
	if l.TokenScope == policies.TokenMutating && !mutating(r) {
		stripToken(r, l.Token)
		return true
	}
	accepted := []string{l.Token}
	if r.URL.Path == "/v1/heartbeat" {
		// the supervised agent's own token is good for heartbeats only
		accepted = append(accepted, heartbeatToken)
	}
	if !stripToken(r, accepted...) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sidecar"`)
		writeError(w, r, http.StatusUnauthorized, ErrUnauthorized,
			"this endpoint needs the sidecar's token: send it as "+HeaderToken+": <token> or Authorization: Bearer <token> "+
				"(listen.token / SIDECAR_TOKEN)")
		return false
	}
	return true
}

// mutating reports whether a request changes the sidecar's state for
// everyone: breaker actions, reloads and heartbeats (a false one keeps a
// dead agent registered as healthy, or isolates a live one).
func mutating(r *http.Request) bool {
	return r.Method == http.MethodPost &&
		(strings.HasPrefix(r.URL.Path, "/v1/breakers/") || r.URL.Path == "/v1/reload" || r.URL.Path == "/v1/heartbeat")
}

// stripToken removes the headers that carry a token and reports whether
// one of them held one of tokens (compared in constant time; empty tokens
// match nothing).
func stripToken(r *http.Request, tokens ...string) bool {
	tokens = slices.DeleteFunc(tokens, func(t string) bool { return t == "" })
	if len(tokens) == 0 {
		r.Header.Del(HeaderToken)
		return false
	}
	match := func(v string) bool {
		return slices.ContainsFunc(tokens, func(t string) bool { return subtle.ConstantTimeCompare([]byte(v), []byte(t)) == 1 })
	}
	ok := false
	if v := r.Header.Get(HeaderToken); v != "" {
		ok = match(v)
		r.Header.Del(HeaderToken)
	}
	if v, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && match(strings.TrimSpace(v)) {
		ok = true
		r.Header.Del("Authorization")
	}
	if strings.HasPrefix(r.URL.Path, "/llm/") && match(r.Header.Get("X-Api-Key")) {
		ok = true
		r.Header.Del("X-Api-Key")
	}
	return ok
}
