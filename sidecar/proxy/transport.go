package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/internal/retryafter"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/h1"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// callPlan is what the transport needs to route one proxied request; it
// travels in the request's context.
type callPlan struct {
	stages     []stage
	path       string // path below the upstream, e.g. "/v1/search"
	rawPath    string
	body       *replayBody
	idempotent bool
	hops       string  // X-Sidecar-Hops on the ingress's forwarded stages
	kind       string  // KindUpstream or KindTask, for metrics
	target     string  // the upstream called, or the agent's service
	served     *served // what the server span reports; nil when tracing is off
}

type planKey struct{}

// attemptOutcome classifies one attempt.
type attemptOutcome int

const (
	outcomeOK           attemptOutcome = iota // an answer that is not a failure (2xx, 3xx, most 4xx)
	outcomeFailStatus                         // an answer with a failure status (5xx, 429, …)
	outcomeNotSent                            // the connection failed before the request was sent
	outcomeTimeout                            // no answer within the timeout
	outcomeBroken                             // the connection broke after the request was sent
	outcomeCanceled                           // the caller went away
	outcomeTokenRefused                       // a sidecar's ingress refused the token sent, or its absence
)

// callTransport is the proxy's RoundTripper: it walks the plan's stages and
// targets through their breakers, with retries and fallbacks, and returns
// the first good answer, else the best error.
type callTransport struct {
	rt      http.RoundTripper
	observe func(kind, target string, o outcome.Outcome, d time.Duration, sc trace.SpanContext) // nil: not observed
	log     hclog.Logger                                                                        // nil: no log
	now     func() time.Time                                                                    // reads Retry-After dates; nil: time.Now
	tracer  trace.Tracer                                                                        // nil: no attempt spans
}

var upstreamDialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// NewTransport returns the client of /call/ and the ingress: HTTP/1.1 with
// the exchange made in the calling goroutine (package h1), which make bench
// measured faster than net/http's Transport on this path.
func NewTransport(roots *x509.CertPool) *h1.Transport {
	return &h1.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext:         upstreamDialer.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
}

// RoundTrip implements http.RoundTripper.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	plan, _ := req.Context().Value(planKey{}).(*callPlan)
	if plan == nil {
		return nil, errors.New("proxy: request without a call plan")
	}
	start := time.Now()
	resp, o, err := t.route(req, plan)
	if s := plan.served; s != nil {
		if err != nil {
			s.canceled = true
		} else {
			s.status, s.outcome, s.hasOutcome = resp.StatusCode, o, true
		}
	}
	if err == nil && t.observe != nil {
		t.observe(plan.kind, plan.target, o, time.Since(start), trace.SpanContextFromContext(req.Context()))
	}
	return resp, err
}

// route walks the plan and returns the answer and its outcome for metrics;
// an error only when the caller went away.
func (t *callTransport) route(req *http.Request, plan *callPlan) (*http.Response, outcome.Outcome, error) {
	var (
		held       *http.Response // the last failure answer, returned when nothing does better
		lastHard   attemptOutcome // the last timeout or broken connection
		hardDetail string
		heldBy     string // who answered held, for the server span
		refused    string // why an ingress refused the token, and what to set
		reasons    []string
		minOpen    = time.Duration(-1)
	)
	release := func() {
		if held != nil {
			_ = held.Body.Close()
			held = nil
		}
	}

	var slot *atomic.Int64 // the bulkhead slot of the stage being tried
	releaseSlot := func() {
		if slot != nil {
			slot.Add(-1)
			slot = nil
		}
	}
	defer releaseSlot()

	sv := plan.served
stages:
	for si, st := range plan.stages {
		releaseSlot()
		if !plan.body.replayable() {
			break
		}
		if st.limit > 0 {
			if st.inflight.Add(1) > int64(st.limit) {
				st.inflight.Add(-1)
				reasons = append(reasons, fmt.Sprintf("%s: %d calls in flight, the most it takes (max_concurrent)", st.name, st.limit))
				sv.skipped(stageTarget(st), "max_concurrent reached")
				continue
			}
			slot = st.inflight
		}
		ts, why := st.targets(req.Context())
		if len(ts) == 0 {
			reasons = append(reasons, st.name+": "+why)
			sv.skipped(stageTarget(st), why)
			continue
		}
		retries, attempts, open := st.retries, 0, 0
		for _, tg := range ts {
			permit, ok := tg.breaker.Allow()
			if !ok {
				open++
				if rem := tg.breaker.RemainingOpen(); minOpen < 0 || rem < minOpen {
					minOpen = rem
				}
				sv.breakerSkipped(tg)
				continue
			}
			if attempts > 0 {
				if retries == 0 {
					permit.Cancel()
					break
				}
				retries--
			}
			attempts++
			var span trace.Span
			actx := req.Context()
			if sv != nil {
				sv.attempts++
				actx, span = t.startAttempt(req, st, tg, si, attempts-1, sv.attempts)
			}
			resp, oc, detail := t.attempt(req, actx, span, plan, st, tg, permit)
			switch oc {
			case outcomeOK:
				release()
				annotate(resp, st, tg)
				if rb, ok := resp.Body.(interface{ releasing() *releasingBody }); ok && slot != nil {
					rb.releasing().slot, slot = slot, nil // held until the answer is read
				}
				o := outcome.Success
				if st.fallback {
					o = outcome.Fallback
				}
				if sv != nil {
					sv.answeredBy = answeredBy(st, tg)
				}
				return resp, o, nil
			case outcomeCanceled:
				release()
				return nil, 0, req.Context().Err()
			case outcomeFailStatus:
				release()
				annotate(resp, st, tg)
				held, heldBy = resp, answeredBy(st, tg)
				if !plan.idempotent || !plan.body.replayable() {
					continue stages
				}
			case outcomeNotSent:
				reasons = append(reasons, fmt.Sprintf("%s: %s", tg.breaker.Name(), detail))
			case outcomeTimeout, outcomeBroken:
				lastHard, hardDetail = oc, fmt.Sprintf("%s: %s", tg.breaker.Name(), detail)
				if !plan.idempotent || !plan.body.replayable() {
					break stages
				}
			case outcomeTokenRefused:
				// The other instances of the stage take the same token;
				// the task was not passed on, so the next stage may
				// have it.
				if refused == "" {
					refused = detail
				}
				if t.log != nil {
					t.log.Warn("a sidecar's ingress refused the call for its ingress token", tracing.LogPairs(req, "error", detail)...)
				}
				continue stages
			}
		}
		if open > 0 && attempts == 0 {
			reasons = append(reasons, fmt.Sprintf("%s: %d of %d instance(s) open (half-open in %s)", st.name, open, len(ts), readable.Duration(max(minOpen, 0))))
		}
	}

	if refused != "" {
		// A configuration to fix comes before any other answer.
		release()
		return plan.fail(req, http.StatusBadGateway, errIngressToken, refused, 0), outcome.Failure, nil
	}
	switch {
	case held != nil:
		if sv != nil {
			sv.answeredBy, sv.failure = heldBy, heldBy+": "+held.Status
		}
		return held, outcome.Failure, nil
	case lastHard == outcomeTimeout:
		return plan.fail(req, http.StatusGatewayTimeout, errTimeout, "the upstream did not answer in time: "+hardDetail, 0), outcome.Failure, nil
	case lastHard == outcomeBroken:
		return plan.fail(req, http.StatusBadGateway, errUpstreamBroke, "the upstream broke the connection: "+hardDetail, 0), outcome.Failure, nil
	}
	retry := time.Second
	if minOpen > 0 {
		retry = minOpen
	}
	msg := "nothing healthy could take the call"
	if len(reasons) > 0 {
		msg += ": " + strings.Join(reasons, "; ")
	}
	return plan.fail(req, http.StatusServiceUnavailable, errUnavailable, msg, retry), outcome.Rejected, nil
}

// fail is the sidecar's own error answer to the plan's request; the server
// span, when there is one, fails with its type.
func (plan *callPlan) fail(req *http.Request, status int, typ, msg string, retryAfter time.Duration) *http.Response {
	plan.served.failed(typ)
	return errorResponse(req, status, typ, msg, retryAfter)
}

// attempt sends the request to one target and classifies the result. On
// outcomeOK and outcomeFailStatus the response is returned and its body
// must be closed by the caller. With tracing on, actx holds span, the
// attempt's span, whose context the request carries; it ends with the
// attempt (with the answer's body, when there is one).
func (t *callTransport) attempt(req *http.Request, actx context.Context, span trace.Span, plan *callPlan, st stage, tg target, permit breaker.Permit) (*http.Response, attemptOutcome, string) {
	resp, oc, detail := t.send(req, actx, span, plan, st, tg, permit)
	if span != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		why := detail
		if oc == outcomeTokenRefused {
			why = "the ingress refused the ingress token sent, or its absence"
		}
		endAttempt(span, status, oc, why, resp != nil)
	}
	return resp, oc, detail
}

func (t *callTransport) send(req *http.Request, actx context.Context, span trace.Span, plan *callPlan, st stage, tg target, permit breaker.Permit) (*http.Response, attemptOutcome, string) {
	ctx, cancel := context.WithTimeout(actx, st.timeout)
	// req is the proxy's own copy of the caller's request; each attempt
	// gets a shallow copy with its own URL, and its own headers only when
	// it changes them.
	out := req.WithContext(ctx)
	u := *req.URL
	out.URL = &u
	out.URL.Scheme, out.URL.Host = tg.scheme, tg.hostPort
	out.URL.Path = tg.basePath + plan.path
	out.URL.RawPath = ""
	if plan.rawPath != "" {
		out.URL.RawPath = tg.basePath + plan.rawPath
	}
	out.Host = tg.hostPort
	own := false
	if token := tokenSent(st, tg); st.forwarded || token != "" {
		out.Header, own = req.Header.Clone(), true
		if st.forwarded {
			out.Header.Set(HeaderHops, plan.hops)
		}
		if token != "" {
			out.Header.Set(HeaderIngressToken, token)
		}
	}
	if span != nil {
		injectAttempt(ctx, out, own)
	}
	plan.body.attach(out)

	tg.outstanding.Add(1)
	resp, err := t.rt.RoundTrip(out)
	if err != nil {
		tg.outstanding.Add(-1)
		cancel()
		switch {
		case req.Context().Err() != nil:
			permit.Cancel()
			return nil, outcomeCanceled, ""
		case errors.Is(err, context.DeadlineExceeded):
			permit.DoneFailure("timeout")
			return nil, outcomeTimeout, fmt.Sprintf("no answer within %s", st.timeout)
		case notSent(err):
			permit.Done(0, err)
			return nil, outcomeNotSent, shortError(err)
		default:
			permit.Done(0, err)
			return nil, outcomeBroken, shortError(err)
		}
	}
	if refusedByIngress(resp) {
		// Nothing reached the agent behind the ingress: the refusal says
		// nothing about the target's health.
		permit.Cancel()
		_ = resp.Body.Close()
		tg.outstanding.Add(-1)
		cancel()
		return nil, outcomeTokenRefused, tokenRefusal(st, tg)
	}
	failure, _ := tg.breaker.Classify(resp.StatusCode, nil, time.Since(permit.Started()))
	if until, ok := t.heldUntil(failure, resp); ok {
		permit.DoneLimited(resp.StatusCode, breaker.RateLimited, until)
	} else {
		permit.Done(resp.StatusCode, nil)
	}
	rb := &releasingBody{ReadCloser: resp.Body, cancel: cancel, outstanding: tg.outstanding, span: span}
	resp.Body = rb
	if w, ok := rb.ReadCloser.(io.Writer); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection (a WebSocket, say): the reverse proxy
		// needs a body it can also write to.
		resp.Body = &releasingConn{releasingBody: rb, w: w}
	}
	if failure {
		return resp, outcomeFailStatus, resp.Status
	}
	return resp, outcomeOK, ""
}

// heldUntil returns until when a failed answer (a 429, 503 or 529) says
// the instance may be called again (see retryafter.Until): its breaker
// then opens at once until that time.
func (t *callTransport) heldUntil(failure bool, resp *http.Response) (time.Time, bool) {
	if !failure || !retryafter.Applies(resp.StatusCode) {
		return time.Time{}, false
	}
	now := time.Now
	if t.now != nil {
		now = t.now
	}
	return retryafter.Until(resp.Header, now())
}

// releasingBody ends the attempt (its timeout, its in-flight count) once
// when the body is closed.
type releasingBody struct {
	io.ReadCloser
	cancel      context.CancelFunc
	outstanding *atomic.Int64
	slot        *atomic.Int64 // the stage's bulkhead slot, when it has one
	span        trace.Span    // the attempt's span, ended with the body; nil when tracing is off
	closed      atomic.Bool
}

func (b *releasingBody) releasing() *releasingBody { return b }

// releasingConn is the body of a 101 answer: the upgraded connection,
// released like any body when it is closed.
type releasingConn struct {
	*releasingBody
	w io.Writer
}

func (c *releasingConn) Write(p []byte) (int, error) { return c.w.Write(p) }

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		b.cancel()
		b.outstanding.Add(-1)
		if b.slot != nil {
			b.slot.Add(-1)
		}
		if b.span != nil {
			b.span.End()
		}
	}
	return err
}

// trueValue is the shared value of X-Sidecar-Fallback; header values
// shared between responses are never modified.
var trueValue = []string{"true"}

func annotate(resp *http.Response, st stage, tg target) {
	if st.name == "peer" {
		// A peer's sidecar whose own agent could not take the task hands
		// it to its fallbacks and says which one answered: keep that.
		if up := resp.Header.Get(HeaderUpstream); up != "" && up != "agent" && up != "peer" {
			resp.Header[HeaderFallback] = trueValue
			return
		}
	}
	resp.Header[HeaderUpstream] = []string{st.name}
	resp.Header[HeaderInstance] = []string{tg.instance}
	if st.fallback {
		resp.Header[HeaderFallback] = trueValue
	}
}

// notSent reports whether the request certainly did not leave: the
// connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// isIdempotent says whether a request may be sent again after a timeout or
// a broken connection: the idempotent methods of RFC 9110, and any request
// carrying an Idempotency-Key header (the caller's promise that a repeat is
// safe, e.g. because the receiver deduplicates on the key). The header is
// forwarded unchanged so the receiver can do so.
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}
