// Package guard puts the sidecar's listeners behind what no program of this
// host would trip over and a web page would: the control listener answers
// only to its own host names, refuses requests made by web pages, takes
// JSON bodies only as JSON and checks listen.token; the ingress refuses web
// pages and checks ingress.token. Both bound the time a body may take to
// arrive, and cap their open connections. The probe listener refuses web
// pages only.
package guard

import (
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/agent-sidecar/sidecar/internal/apierror"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// Error types of the guards' refusals.
const (
	ErrMisdirected      = "misdirected_request"
	ErrForbidden        = "forbidden"
	ErrUnsupportedMedia = "unsupported_media_type"
	ErrUnauthorized     = "unauthorized"
)

// ControlOptions are what the control listener's guard reads.
type ControlOptions struct {
	// Listen returns the listen block in force; it is read on every
	// request, so a reload applies at once.
	Listen func() policies.Listen
	// Addr returns the listener's bound address, named to a client that
	// used another host name.
	Addr func() string
	// HeartbeatToken, when set, is accepted besides listen.token on
	// POST /v1/heartbeat only: the supervised agent's own token under
	// token_scope "mutating".
	HeartbeatToken string
}

// Control guards the control API. It refuses what no program of this host
// sends, before the token is checked: a request addressed to a name that is
// not the sidecar's (DNS rebinding: a web page whose name now points at
// this host), and a request from a web page. It then checks the token, and
// refuses a body on a JSON endpoint that is not declared as JSON (the form
// and text/plain bodies a page can send without asking). It bounds the time
// a body may take to arrive (listen.body_read_timeout).
func Control(next http.Handler, opts ControlOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := opts.Listen()
		if !hostAllowed(r, l) {
			writeError(w, r, http.StatusMisdirectedRequest, ErrMisdirected, fmt.Sprintf(
				"the control API does not answer to the host %s: it answers to its own address (%s), localhost, "+
					"127.0.0.1 and [::1]; to reach it by another name, add the name to listen.allowed_hosts "+
					"(with allow_remote = true)", strconv.Quote(clip(r.Host, 80)), opts.Addr()))
			return
		}
		if refuseBrowser(w, r, "the control API") {
			return
		}
		if !authorize(w, r, l, opts.HeartbeatToken) {
			return
		}
		if jsonEndpoint(r) && hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, r, http.StatusUnsupportedMediaType, ErrUnsupportedMedia, fmt.Sprintf(
				"%s takes a JSON body: send it with Content-Type: application/json (got %s)",
				r.URL.Path, contentTypeOf(r)))
			return
		}
		serveWithBodyDeadline(w, r, next, l.BodyReadTimeout, "listen.body_read_timeout")
	})
}

// Ingress guards the ingress, which faces the network: web pages are
// refused, the ingress token (when set) is required and removed, and a body
// must arrive within ingress.body_read_timeout. ingress returns the ingress
// block in force (nil: none); it is read on every request. The ingress
// takes any Host (callers reach it by whatever name their network gives it)
// and any content type (tasks are the agent's own format).
func Ingress(next http.Handler, ingress func() *policies.Ingress) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseBrowser(w, r, "the ingress") {
			return
		}
		in := ingress()
		if in == nil {
			next.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get(proxy.HeaderIngressToken)
		r.Header.Del(proxy.HeaderIngressToken)
		if in.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(in.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", proxy.IngressChallenge)
			writeError(w, r, http.StatusUnauthorized, ErrUnauthorized,
				"this ingress needs its token: send it as "+proxy.HeaderIngressToken+": <token> (ingress.token of the sidecar called)")
			return
		}
		serveWithBodyDeadline(w, r, next, in.BodyReadTimeout, "ingress.body_read_timeout")
	})
}

// Probes guards the read-only probe listener (listen.probe_address), which
// a kubelet reaches on the pod IP: any Host and no token, since it answers
// only whether the agent and the sidecar are alive and nothing secret; web
// pages are refused, as everywhere (nothing there is for them).
func Probes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseBrowser(w, r, "the probe listener") {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether r's Host is one the control listener answers
// to: an IP address it was reached at, a loopback name or address, the host
// of listen.address, or one of listen.allowed_hosts. The port is not
// compared. An empty Host (HTTP/1.0) is not a browser's.
func hostAllowed(r *http.Request, l policies.Listen) bool {
	h := normalHost(r.Host)
	if h == "" || h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok {
			return false
		}
		lhost, _, err := net.SplitHostPort(local.String())
		return err == nil && ip.Equal(net.ParseIP(lhost))
	}
	if bound, _, err := net.SplitHostPort(l.Address); err == nil && h == normalHost(bound) {
		return true
	}
	if l.AllowRemote {
		for _, a := range l.AllowedHosts {
			if h == normalHost(a) {
				return true
			}
		}
	}
	return false
}

// normalHost is a Host header's host, without port, brackets or a final
// dot, in lower case.
func normalHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// refuseBrowser answers 403 to a request a web page made: one with an
// Origin header (browsers send it on every cross-origin request and every
// POST) or whose Sec-Fetch-Site says another site made it. Same-origin and
// user-typed ("none") requests pass: with the Host check, a page can only
// be same-origin with the sidecar when the sidecar served it, which it
// never does.
func refuseBrowser(w http.ResponseWriter, r *http.Request, what string) bool {
	why := ""
	switch site := r.Header.Get("Sec-Fetch-Site"); {
	case len(r.Header.Values("Origin")) > 0:
		why = "it carries an Origin header"
	case site == "cross-site" || site == "same-site":
		why = "its Sec-Fetch-Site is " + site
	default:
		return false
	}
	writeError(w, r, http.StatusForbidden, ErrForbidden, what+" refuses requests made by web pages ("+why+
		"): call it from a program, which sends neither Origin nor Sec-Fetch-Site")
	return true
}

// jsonEndpoint reports whether the control API reads r's body as JSON: the
// model gateway and the sidecar's own /v1/ endpoints. /call/ passes bodies
// on as they are.
func jsonEndpoint(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/llm/") || strings.HasPrefix(r.URL.Path, "/v1/")
}

// hasBody reports whether r declares a body: a Content-Length above 0 or
// a chunked one.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// isJSON reports whether a Content-Type is application/json or a +json
// type, whatever its parameters.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func contentTypeOf(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		return strconv.Quote(clip(ct, 80))
	}
	return "no Content-Type"
}

// writeError writes a refusal of r in the sidecar's error body, with r's
// trace id when it has one.
func writeError(w http.ResponseWriter, r *http.Request, status int, typ, msg string) {
	apierror.WriteTraced(w, status, typ, msg, tracing.TraceID(r.Context(), r.Header))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
