package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// HeaderHops lists the sidecars a proxied request has passed through, oldest
// first, comma-separated, like Via: each sidecar that passes a call or a
// task on appends its hop name ("{agent id}#{8 hex digits}", the digits
// drawn at each start so two sidecars sharing an agent id are told apart).
const HeaderHops = "X-Sidecar-Hops"

// maxHops is how many sidecars a request may have passed through before one
// refuses it: more than any sane chain of calls, few enough that a loop
// through other proxies ends within milliseconds.
const maxHops = 8

// errLoop is the error type of a 508 answer.
const errLoop = "loop_detected"

// newHopNonce returns the random part of this sidecar's hop name.
func newHopNonce() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hopEscaper keeps an agent id whole in X-Sidecar-Hops: a comma (the list's
// separator) and a percent sign are percent-encoded.
var hopEscaper = strings.NewReplacer("%", "%25", ",", "%2C")

// hopName is this sidecar's entry in X-Sidecar-Hops, built once per agent
// id.
func (r *router) hopName(agentID string) string {
	if h := r.hopSelf.Load(); h != nil && h[0] == agentID {
		return h[1]
	}
	h := &[2]string{agentID, hopEscaper.Replace(agentID) + "#" + r.hopNonce}
	r.hopSelf.Store(h)
	return h[1]
}

// hopPath is what a request's X-Sidecar-Hops says about where it has been.
type hopPath struct {
	entries []string
	ids     map[string]bool // the agent ids of the sidecars passed, for ingress peers
}

// readHops parses X-Sidecar-Hops (every line of it). Empty entries are
// ignored.
func readHops(h http.Header) hopPath {
	var p hopPath
	for _, line := range h.Values(HeaderHops) {
		for _, e := range strings.Split(line, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			p.entries = append(p.entries, e)
			if p.ids == nil {
				p.ids = map[string]bool{}
			}
			id := e
			if i := strings.LastIndexByte(e, '#'); i > 0 {
				id = e[:i]
			}
			if u, err := url.PathUnescape(id); err == nil {
				id = u
			}
			p.ids[id] = true
		}
	}
	return p
}

// passHop checks the request's hops before it is proxied and marks this
// one. A request that has already passed through this sidecar, or through
// maxHops sidecars, is answered 508 Loop Detected and false is returned,
// before anything is dialled (and recorded for sv, the server span). Otherwise X-Sidecar-Hops is set to the path
// so far plus this sidecar. X-Sidecar-Forwarded, which older sidecars set on
// tasks they forwarded, is removed: it is not trusted and not passed on.
func (r *router) passHop(w http.ResponseWriter, req *http.Request, sv *served, agentID string) (hopPath, bool) {
	req.Header.Del(HeaderForwarded)
	p := readHops(req.Header)
	self := r.hopName(agentID)
	for _, e := range p.entries {
		if e == self {
			writeJSONError(w, req, sv, http.StatusLoopDetected, errLoop, fmt.Sprintf(
				"this request has already passed through this sidecar (%s: %s): an upstream or a peer points back "+
					"at it; check the url of the upstreams in the chain", HeaderHops, strings.Join(p.entries, ", ")))
			return p, false
		}
	}
	if len(p.entries) >= maxHops {
		writeJSONError(w, req, sv, http.StatusLoopDetected, errLoop, fmt.Sprintf(
			"this request has passed through %d sidecars, the most it may (%s: %s); check the url of the upstreams "+
				"in the chain", len(p.entries), HeaderHops, strings.Join(p.entries, ", ")))
		return p, false
	}
	if len(p.entries) == 0 {
		req.Header[HeaderHops] = []string{self}
		return p, true
	}
	req.Header[HeaderHops] = []string{strings.Join(append(p.entries[:len(p.entries):len(p.entries)], self), ", ")}
	return p, true
}
