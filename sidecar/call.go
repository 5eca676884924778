package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// newReverseProxy returns the proxy shared by /call/ and the ingress: the
// standard library handles hop-by-hop headers, streaming and trailers; the
// transport chooses where each request goes.
func newReverseProxy(t http.RoundTripper, s *Sidecar) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {}, // the transport sets the destination per attempt
		Transport: t,
		// FlushInterval 0: answers of known length are written in one go;
		// streamed ones (SSE, unknown length) are flushed after every write.
		FlushInterval: 0,
		// Without a pool every request allocates a 32 KiB copy buffer, and
		// the garbage collector it feeds cost about 40% of the CPU per
		// request (make bench, profiled with perf).
		BufferPool: copyBuffers,
		ErrorLog:   s.httpLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
				return // the caller went away
			}
			s.log.Warn("proxied call failed", "path", r.URL.Path, "error", err)
			writeJSONError(w, http.StatusBadGateway, errUpstreamBroke, "the call could not be completed: "+shortError(err))
		},
	}
}

// bufferPool hands the reverse proxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

func writeJSONError(w http.ResponseWriter, status int, typ, msg string) {
	body, _ := json.Marshal(APIError{Error: APIErrorBody{Type: typ, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// serveCall serves /call/{upstream}/{path...}. It is routed before the
// control API's router: it is the hot path of every call an agent makes.
func (s *Sidecar) serveCall(w http.ResponseWriter, req *http.Request) {
	cfg := s.Config()
	name, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/call/"), "/")
	if _, ok := cfg.Upstreams[name]; !ok {
		writeJSONError(w, http.StatusNotFound, errNotFound,
			fmt.Sprintf("no upstream named %q; configured: %s (add an upstream block)", name, upstreamNames(cfg)))
		return
	}
	if _, ok := s.passHop(w, req, cfg.Agent.ID); !ok {
		return
	}
	path, rawPath, dot := callPath(req, name)
	if dot != "" {
		writeJSONError(w, http.StatusBadRequest, errInvalidRequest, fmt.Sprintf(
			"the path below upstream %q has the dot-segment %q: /call/{upstream}/ paths may not contain . or .. "+
				"segments, plain or percent-encoded; send the path the upstream should get, without them", name, dot))
		return
	}
	body, err := readReplayBody(req)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, errInvalidRequest, "could not read the request body: "+err.Error())
		return
	}
	defer body.release()
	plan := &callPlan{
		stages:     s.router.callStages(cfg, name),
		path:       path,
		rawPath:    rawPath,
		body:       body,
		idempotent: isIdempotent(req),
		kind:       kindUpstream,
		target:     name,
	}
	s.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), planKey{}, plan)))
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

// ingressHandler takes tasks for the local agent: to the agent through its
// breaker; when the agent is isolated or its breaker is open, to a passing
// peer of the same service, then to the fallback upstreams. Peers the task
// has already passed through (X-Sidecar-Hops) are skipped, and a task
// another sidecar passed on tries one peer at most, so sidecars never bounce
// a task between them and a task visits few of them. The local agent does
// not see X-Sidecar-Hops.
func (s *Sidecar) ingressHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cfg := s.Config()
		in := cfg.Ingress
		body, err := readReplayBody(req)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, errInvalidRequest, "could not read the request body: "+err.Error())
			return
		}
		defer body.release()
		passed, ok := s.passHop(w, req, cfg.Agent.ID)
		if !ok {
			return
		}
		hops := req.Header.Get(headerHops)
		req.Header.Del(headerHops)
		bcfg := cfg.Breakers[in.Breaker]
		stages := []stage{{
			name: "agent", retries: 0, timeout: in.Timeout,
			targets: func(context.Context) ([]target, string) { return s.localAgentTarget(cfg, bcfg) },
		}}
		if in.MaxConcurrent > 0 {
			stages[0].limit, stages[0].inflight = in.MaxConcurrent, s.router.inflightOf(ingressInflight)
		}
		peerRetries := 1
		if len(passed.entries) > 0 {
			peerRetries = 0
		}
		stages = append(stages, stage{
			name: "peer", fallback: true, retries: peerRetries, timeout: in.Timeout, forwarded: true,
			targets:      func(ctx context.Context) ([]target, string) { return s.peerTargets(ctx, cfg, bcfg, passed.ids) },
			ingressToken: in.Token, tokenKey: peerTokenKey,
		})
		for _, st := range s.router.upstreamStages(cfg, upstreamChain(cfg, in.Fallback...), true) {
			st.forwarded = true
			stages = append(stages, st)
		}
		plan := &callPlan{stages: stages, path: req.URL.Path, rawPath: req.URL.RawPath, body: body,
			idempotent: isIdempotent(req), hops: hops, kind: kindTask, target: cfg.Agent.Name}
		s.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), planKey{}, plan)))
	})
}

// ingressInflight names the counter of tasks in flight to the local agent
// (ingress.max_concurrent); no upstream can have this name.
const ingressInflight = "/ingress"

// localAgentTarget is the local agent, unless it is isolated.
func (s *Sidecar) localAgentTarget(cfg *policies.Config, bcfg policies.Breaker) ([]target, string) {
	if snap := s.tracker.Snapshot(); snap.IsolatedNow() {
		return nil, fmt.Sprintf("agent %s is isolated (%s)", cfg.Agent.ID, strings.ReplaceAll(snap.Reason, "_", " "))
	}
	hp := joinHostPort(cfg.Agent.Address, cfg.Agent.Port)
	return []target{s.router.newTarget(ingressOwner, "agent:"+cfg.Agent.ID, "agent", cfg.Agent.ID, "http", hp, bcfg)}, ""
}

// peerTargets are the other passing instances of the agent's own service,
// reached through their sidecars' ingress, but those in skip (the agent ids
// of the sidecars the task has passed through).
func (s *Sidecar) peerTargets(ctx context.Context, cfg *policies.Config, bcfg policies.Breaker, skip map[string]bool) ([]target, string) {
	if s.discovery == nil {
		return nil, "no Consul discovery"
	}
	q := discovery.Query{Service: cfg.Agent.Name}
	set := s.discovery.Instances(q)
	if !set.Known {
		wctx, cancel := context.WithTimeout(ctx, firstDiscoveryWait)
		set = s.discovery.Wait(wctx, q)
		cancel()
	}
	ts := make([]target, 0, len(set.Instances))
	for _, in := range set.Instances {
		if in.ID == cfg.Agent.ID || skip[in.ID] {
			continue
		}
		hp := in.HostPort()
		t := s.router.newTarget(ingressOwner, "peer:"+in.ID+"@"+hp, "peer", in.ID, in.Scheme(), hp, bcfg)
		t.ingress = isIngressInstance(in)
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		if len(skip) > 0 {
			return nil, fmt.Sprintf("no passing peer of service %q the task has not already passed through", cfg.Agent.Name)
		}
		return nil, fmt.Sprintf("no passing peer of service %q", cfg.Agent.Name)
	}
	return s.router.order("peer", policies.BalanceRoundRobin, ts), ""
}
