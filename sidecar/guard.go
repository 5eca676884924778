package sidecar

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
)

// HeaderIngressToken carries ingress.token on a request to an ingress (see
// proxy.HeaderIngressToken).
const HeaderIngressToken = proxy.HeaderIngressToken

// Error types of the listeners' refusals.
const (
	errMisdirected      = "misdirected_request"
	errForbidden        = "forbidden"
	errUnsupportedMedia = "unsupported_media_type"
	errRequestTimeout   = "request_timeout"
)

// guardControl refuses what no program of this host sends to the control
// API, before the token is checked: a request addressed to a name that is
// not the sidecar's (DNS rebinding: a web page whose name now points at
// this host), a request from a web page, and a body on a JSON endpoint that
// is not declared as JSON (the form and text/plain bodies a page can send
// without asking). It bounds the time a body may take to arrive.
func (s *Sidecar) guardControl(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := s.Config().Listen
		if !s.hostAllowed(r, l) {
			writeJSONError(w, http.StatusMisdirectedRequest, errMisdirected, fmt.Sprintf(
				"the control API does not answer to the host %s: it answers to its own address (%s), localhost, "+
					"127.0.0.1 and [::1]; to reach it by another name, add the name to listen.allowed_hosts "+
					"(with allow_remote = true)", strconv.Quote(clip(r.Host, 80)), s.Addr()))
			return
		}
		if refuseBrowser(w, r, "the control API") {
			return
		}
		if !s.authorize(w, r) {
			return
		}
		if jsonEndpoint(r) && hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
			writeJSONError(w, http.StatusUnsupportedMediaType, errUnsupportedMedia, fmt.Sprintf(
				"%s takes a JSON body: send it with Content-Type: application/json (got %s)",
				r.URL.Path, contentTypeOf(r)))
			return
		}
		serveWithBodyDeadline(w, r, next, l.BodyReadTimeout, "listen.body_read_timeout")
	})
}

// guardIngress protects the ingress, which faces the network: web pages
// are refused, the ingress token (when set) is required and removed, and a
// body must arrive within ingress.body_read_timeout. The ingress takes any
// Host (callers reach it by whatever name their network gives it) and any
// content type (tasks are the agent's own format).
func (s *Sidecar) guardIngress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseBrowser(w, r, "the ingress") {
			return
		}
		in := s.Config().Ingress
		if in == nil {
			next.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get(HeaderIngressToken)
		r.Header.Del(HeaderIngressToken)
		if in.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(in.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", proxy.IngressChallenge)
			writeJSONError(w, http.StatusUnauthorized, errUnauthorized,
				"this ingress needs its token: send it as "+HeaderIngressToken+": <token> (ingress.token of the sidecar called)")
			return
		}
		serveWithBodyDeadline(w, r, next, in.BodyReadTimeout, "ingress.body_read_timeout")
	})
}

// hostAllowed reports whether r's Host is one the control listener answers
// to: an IP address it was reached at, a loopback name or address, the host
// of listen.address, or one of listen.allowed_hosts. The port is not
// compared. An empty Host (HTTP/1.0) is not a browser's.
func (s *Sidecar) hostAllowed(r *http.Request, l policies.Listen) bool {
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
	writeJSONError(w, http.StatusForbidden, errForbidden, what+" refuses requests made by web pages ("+why+
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

// serveWithBodyDeadline serves r with a deadline on reading its body. The
// connection's read deadline is set for d; net/http clears it once the body
// has been read to its end (it then watches the connection for the client
// going away), so a long answer streamed afterwards (a model's stream, a
// slow upstream) is not cut. A body that has not arrived in time fails to
// read, with a bodyTimeoutError, and the connection is closed after the
// answer. Requests without a body, WebSocket upgrades among them, get no
// deadline.
func serveWithBodyDeadline(w http.ResponseWriter, r *http.Request, next http.Handler, d time.Duration, key string) {
	if d <= 0 || !hasBody(r) {
		next.ServeHTTP(w, r)
		return
	}
	// A connection's deadline is the network's wall clock, not the
	// sidecar's (Options.Now), which a test may have moved.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(d)); err == nil {
		r.Body = &deadlineBody{ReadCloser: r.Body, limit: d, key: key}
	}
	next.ServeHTTP(w, r)
}

// deadlineBody says which setting a body that came too late ran into.
type deadlineBody struct {
	io.ReadCloser
	limit time.Duration
	key   string
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = &bodyTimeoutError{limit: b.limit, key: b.key, err: err}
	}
	return n, err
}

// bodyTimeoutError is a body that did not arrive within its deadline.
type bodyTimeoutError struct {
	limit time.Duration
	key   string
	err   error
}

func (e *bodyTimeoutError) Error() string {
	return fmt.Sprintf("the request body did not arrive within %s (%s)", e.limit, e.key)
}

func (e *bodyTimeoutError) Unwrap() error { return e.err }

// limitListener caps ln's open connections at n: past it, new connections
// wait to be accepted until one closes. 0 is no cap.
func limitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, n)
}
