package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
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
	path, rawPath := callPath(req, name)
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
// escaped form when it differs.
func callPath(req *http.Request, name string) (string, string) {
	below := func(p string) string {
		rest, ok := strings.CutPrefix(p, "/call/")
		if !ok {
			return p
		}
		rest, ok = strings.CutPrefix(rest, name)
		if !ok {
			return p
		}
		if rest == "" {
			return "/"
		}
		return rest
	}
	var raw string
	if req.URL.RawPath != "" {
		raw = below(req.URL.RawPath)
	}
	return below(req.URL.Path), raw
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
// peer of the same service (never this one), then to the fallback
// upstreams. A request another sidecar forwarded goes to the local agent
// only, so two sidecars never bounce a task between them.
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
		forwarded := req.Header.Get(headerForwarded) != ""
		req.Header.Del(headerForwarded)
		bcfg := cfg.Breakers[in.Breaker]
		stages := []stage{{
			name: "agent", retries: 0, timeout: in.Timeout,
			targets: func(context.Context) ([]target, string) { return s.localAgentTarget(cfg, bcfg) },
		}}
		if !forwarded {
			stages = append(stages, stage{
				name: "peer", fallback: true, retries: 1, timeout: in.Timeout, forwarded: true,
				targets: func(ctx context.Context) ([]target, string) { return s.peerTargets(ctx, cfg, bcfg) },
			})
			for _, st := range s.router.upstreamStages(cfg, upstreamChain(cfg, in.Fallback...), true) {
				st.forwarded = true
				stages = append(stages, st)
			}
		}
		plan := &callPlan{stages: stages, path: req.URL.Path, rawPath: req.URL.RawPath, body: body,
			idempotent: isIdempotent(req), forwardTag: cfg.Agent.ID, kind: kindTask, target: cfg.Agent.Name,
			peerToken: in.Token}
		s.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), planKey{}, plan)))
	})
}

// localAgentTarget is the local agent, unless it is isolated.
func (s *Sidecar) localAgentTarget(cfg *policies.Config, bcfg policies.Breaker) ([]target, string) {
	if snap := s.tracker.Snapshot(); snap.IsolatedNow() {
		return nil, fmt.Sprintf("agent %s is isolated (%s)", cfg.Agent.ID, strings.ReplaceAll(snap.Reason, "_", " "))
	}
	hp := joinHostPort(cfg.Agent.Address, cfg.Agent.Port)
	return []target{s.router.newTarget(ingressOwner, "agent:"+cfg.Agent.ID, "agent", cfg.Agent.ID, "http", hp, bcfg)}, ""
}

// peerTargets are the other passing instances of the agent's own service,
// reached through their sidecars' ingress.
func (s *Sidecar) peerTargets(ctx context.Context, cfg *policies.Config, bcfg policies.Breaker) ([]target, string) {
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
		if in.ID == cfg.Agent.ID {
			continue
		}
		hp := in.HostPort()
		ts = append(ts, s.router.newTarget(ingressOwner, "peer:"+in.ID+"@"+hp, "peer", in.ID, "http", hp, bcfg))
	}
	if len(ts) == 0 {
		return nil, fmt.Sprintf("no passing peer of service %q", cfg.Agent.Name)
	}
	return s.router.order("peer", policies.BalanceRoundRobin, ts), ""
}
