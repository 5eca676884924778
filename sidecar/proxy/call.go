package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/agent-sidecar/sidecar/policies"
)

// ServeCall serves /call/{upstream}/{path...}. The sidecar routes it before
// the control API's router: it is the hot path of every call an agent makes.
// With a tracer, a call to a configured upstream gets a server span.
func (p *Proxy) ServeCall(w http.ResponseWriter, req *http.Request) {
	cfg := p.cfg.Load()
	name, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/call/"), "/")
	if _, ok := cfg.Upstreams[name]; !ok {
		writeJSONError(w, req, nil, http.StatusNotFound, errNotFound,
			fmt.Sprintf("no upstream named %q; configured: %s (add an upstream block)", name, upstreamNames(cfg)))
		return
	}
	var sv *served
	if p.opts.Tracer != nil {
		req, sv = startServerSpan(p.opts.Tracer, req, "call "+name, name)
		defer sv.end()
	}
	p.serveCall(w, req, cfg, name, sv)
}

// serveCall serves a call to the upstream name; sv, when tracing is on,
// gets what its server span reports.
func (p *Proxy) serveCall(w http.ResponseWriter, req *http.Request, cfg *policies.Config, name string, sv *served) {
	if _, ok := p.router.passHop(w, req, sv, cfg.Agent.ID); !ok {
		return
	}
	path, rawPath, dot := callPath(req, name)
	if dot != "" {
		writeJSONError(w, req, sv, http.StatusBadRequest, errInvalidRequest, fmt.Sprintf(
			"the path below upstream %q has the dot-segment %q: /call/{upstream}/ paths may not contain . or .. "+
				"segments, plain or percent-encoded; send the path the upstream should get, without them", name, dot))
		return
	}
	body, err := readReplayBody(req)
	if err != nil {
		writeJSONError(w, req, sv, http.StatusBadRequest, errInvalidRequest, "could not read the request body: "+err.Error())
		return
	}
	defer body.release()
	plan := &callPlan{
		stages:     p.router.callStages(cfg, name),
		path:       path,
		rawPath:    rawPath,
		body:       body,
		idempotent: isIdempotent(req),
		kind:       KindUpstream,
		target:     name,
		served:     sv,
	}
	p.rp.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), planKey{}, plan)))
}

// callPath is the part of the request path after /call/{upstream}, with its
// escaped form when it differs, or why it is refused: a path with a
// dot-segment ("." or ".."), written plainly or percent-encoded (once or
// more: "%2e%2e", "..%2f", "%252e%252e") or split by a backslash, is
// refused so that no upstream, whatever it decodes or cleans, is asked for
// something above its base path.
func callPath(req *http.Request, name string) (path, raw, problem string) {
	path = "/"
	if rest, ok := strings.CutPrefix(req.URL.Path, "/call/"+name); ok && rest != "" {
		path = rest
	}
	if req.URL.RawPath != "" {
		// The escaped path's first segment after /call/ is the upstream's
		// name, escaped; what follows it is the escaped path below.
		rest, _ := strings.CutPrefix(req.URL.RawPath, "/call/")
		seg, below, found := strings.Cut(rest, "/")
		if n, err := url.PathUnescape(seg); err == nil && n == name {
			raw = "/"
			if found {
				raw += below
			}
		}
	}
	if seg := dotSegment(path); seg != "" {
		return "", "", seg
	}
	if seg := dotSegment(raw); seg != "" {
		return "", "", seg
	}
	return path, raw, ""
}

// dotSegment returns the first segment of p that is a dot-segment for some
// server: "." or ".." once percent-decoded as many times as it takes, with
// "/" and "\\" both separating segments and a ";parameter" ignored ("..;x"
// is ".." to Tomcat); "" when there is none.
func dotSegment(p string) string {
	for p != "" {
		seg := p
		if i := strings.IndexAny(p, "/\\"); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if isDot(seg) {
			return seg
		}
		if strings.IndexByte(seg, '%') < 0 {
			continue
		}
		for _, part := range strings.FieldsFunc(decodeAll(seg), func(r rune) bool { return r == '/' || r == '\\' }) {
			if isDot(part) {
				return seg
			}
		}
	}
	return ""
}

func isDot(seg string) bool {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		seg = seg[:i]
	}
	return seg == "." || seg == ".."
}

// decodeAll percent-decodes s until nothing changes, leaving a "%" that
// does not start an escape as it is, as a lenient server would.
func decodeAll(s string) string {
	for {
		d := decodeOnce(s)
		if d == s {
			return s
		}
		s = d
	}
}

func decodeOnce(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func upstreamNames(cfg *policies.Config) string {
	if len(cfg.Upstreams) == 0 {
		return "none"
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for n := range cfg.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
