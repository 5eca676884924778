package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agent-sidecar/sidecar/internal/bodybuf"
	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
	"go.opentelemetry.io/otel/trace"
)

// maxAnswer is the largest non-streaming answer held in memory before it
// is passed on; a larger one is relayed as it comes, without fallback.
const maxAnswer = 64 << 20

// call is one request through the gateway: the chain from the model it
// names down to the last fallback.
type call struct {
	g     *Gateway
	st    *state
	ep    endpoint
	req   request
	in    *http.Request
	w     http.ResponseWriter
	start time.Time
	first *policies.Model
	// from is where the chain starts: first, or the model a spent budget
	// sends every request to.
	from *policies.Model

	attempts int
	tried    []*policies.Model // the models called or skipped so far
	triedBuf [4]*policies.Model
	// contextHop says that a model refused the prompt as too long and the
	// request went on to its context_fallback: an answer from there is not
	// a degradation of the chain.
	contextHop bool
	waited     time.Duration // time spent waiting on upstreams
	reasons    []string      // why each model did not answer
	minOpen    time.Duration // shortest remaining open time of a skipped model
	headers    time.Time     // when the answer's headers went to the agent

	span *requestSpan // the request's server span; nil when tracing is off
	try  *attemptSpan // the span of the model call in progress, when tracing
}

// result is how one attempt ended.
type result int

const (
	resultFailed   result = iota // the model failed before anything reached the agent: try the next
	resultAnswered               // an answer (or a non-retriable error) reached the agent
	resultCanceled               // the agent went away
	resultTooLong                // the model refused the prompt as too long: try its context_fallback
)

func (c *call) run() {
	c.minOpen = -1
	c.tried = c.triedBuf[:0]
	chain := c.st.chain(c.from)
	for len(chain) > 0 {
		m := chain[0]
		chain = chain[1:]
		if slices.Contains(c.tried, m) {
			continue
		}
		c.tried = append(c.tried, m)
		h, why := c.hopTo(m)
		if why != "" {
			c.skip(m, why)
			continue
		}
		b := c.g.breaker(c.st, m)
		permit, ok := b.Allow()
		if !ok {
			rem := b.RemainingOpen()
			if c.minOpen < 0 || rem < c.minOpen {
				c.minOpen = rem
			}
			why := "breaker open"
			if held := b.Snapshot().Held; held != "" {
				why = held
			}
			c.skip(m, fmt.Sprintf("%s (half-open in %s)", why, readable.Duration(rem)))
			continue
		}
		leave := func() {}
		if q := c.g.queueOf(m); q != nil {
			var why string
			queued := time.Now()
			leave, why = q.enter(c.in.Context())
			c.waited += time.Since(queued)
			if c.in.Context().Err() != nil {
				permit.Cancel()
				return // the agent went away while the request waited
			}
			if why != "" {
				permit.Cancel()
				c.skip(m, why)
				continue
			}
		}
		res := c.attempt(m, b, permit, h)
		leave()
		switch res {
		case resultAnswered, resultCanceled:
			return
		case resultTooLong:
			// The rest of m's chain has no larger window: the context
			// fallback's chain takes over.
			c.contextHop = true
			chain = c.st.chain(c.st.models[m.ContextFallback])
		}
	}
	retry := time.Second
	if c.minOpen > 0 {
		retry = c.minOpen
	}
	o := outcome.Failure
	if c.attempts == 0 {
		o = outcome.Rejected // every model's breaker was open
	}
	c.observe("", o)
	msg := "no model could answer: " + strings.Join(c.reasons, "; ")
	c.g.log.Warn("no model could answer", c.traced("model", c.first.Label, "reasons", strings.Join(c.reasons, "; "))...)
	c.setHeaders(c.w.Header(), c.first, false)
	c.span.refused(http.StatusServiceUnavailable)
	c.span.fail("no model could answer")
	writeError(c.w, c.ep.provider, http.StatusServiceUnavailable, msg, retry, c.traceID())
}

// skip records that the chain passes over model m, for the reason given.
func (c *call) skip(m *policies.Model, why string) {
	c.reasons = append(c.reasons, m.Label+": "+why)
	c.g.count(m.Label, func(s *modelStats) { s.skipped++ })
	c.span.skipped(m.Label, why)
}

// traceID is the request's trace id: its span's, else the agent's
// traceparent's; "" when it has neither.
func (c *call) traceID() string { return tracing.TraceID(c.in.Context(), c.in.Header) }

// traced returns the key/value pairs of a log line about the request,
// with its trace id when it has one.
func (c *call) traced(kv ...any) []any { return tracing.LogPairs(c.in, kv...) }

// fail records a failure of model m for the reason given.
func (c *call) fail(m *policies.Model, permit breaker.Permit, reason string) result {
	c.try.failed(reason)
	permit.DoneFailure(reason)
	c.reasons = append(c.reasons, m.Label+": "+reason)
	c.g.count(m.Label, func(s *modelStats) { s.failures++; s.lastFailure = reason; s.lastFailureAt = c.g.opts.Now() })
	return resultFailed
}

// attempt sends the request to model m and, when it answers, passes the
// answer to the agent.
func (c *call) attempt(m *policies.Model, b *breaker.Breaker, permit breaker.Permit, h hop) result {
	body := h.body
	ctx, cancel := context.WithTimeout(c.in.Context(), m.Timeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, m.BaseURL+h.ep.upstream, http.NoBody)
	if err != nil {
		permit.Cancel()
		c.reasons = append(c.reasons, m.Label+": invalid base_url")
		return resultFailed
	}
	out.Body, out.ContentLength = c.req.pinned.reader(body), int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return c.req.pinned.reader(body), nil }
	c.outHeaders(out.Header, m, h.crosses())

	c.attempts++
	if c.span != nil {
		c.startTry(out, m, b, h)
		defer c.endTry()
	}
	c.g.count(m.Label, func(s *modelStats) { s.calls++ })
	// A stream's first event must come within first_byte_timeout. A
	// non-streaming answer arrives whole when it is ready, so only timeout
	// bounds it: a long answer is not mistaken for a stalled model.
	var firstByteExpired atomic.Bool
	fbTimeout := m.FirstByteTimeout
	if !c.req.stream || fbTimeout <= 0 {
		fbTimeout = m.Timeout + time.Hour // never before timeout
	}
	fb := time.AfterFunc(fbTimeout, func() { firstByteExpired.Store(true); cancel() })
	defer fb.Stop()

	sent := time.Now()
	resp, err := c.g.rt.RoundTrip(out)
	if err != nil {
		c.waited += time.Since(sent)
		return c.transportFailure(m, permit, err, &firstByteExpired, ctx)
	}
	defer resp.Body.Close()
	c.try.gotHeaders(resp)

	if c.tooLong(m, resp) {
		c.waited += time.Since(sent)
		return c.refusedTooLong(m, permit)
	}
	if failure, reason := b.Classify(resp.StatusCode, nil, 0); failure {
		c.waited += time.Since(sent)
		if limit, until, ok := limitOf(resp, c.g.opts.Now()); ok {
			return c.failLimited(m, permit, resp.StatusCode, limit, until)
		}
		return c.fail(m, permit, reason)
	}
	if resp.StatusCode >= 300 || !isEventStream(resp) {
		fb.Stop()
		return c.relayWhole(m, permit, resp, sent, &firstByteExpired, ctx, h)
	}
	return c.relayStream(m, b, permit, resp, sent, fb, &firstByteExpired, ctx, cancel, h)
}

// transportFailure classifies a call that got no answer.
func (c *call) transportFailure(m *policies.Model, permit breaker.Permit, err error, firstByte *atomic.Bool, ctx context.Context) result {
	switch {
	case c.in.Context().Err() != nil:
		permit.Cancel()
		c.g.count(m.Label, func(s *modelStats) { s.canceled++ })
		return resultCanceled
	case firstByte.Load():
		return c.fail(m, permit, "no first byte within "+readable.Duration(m.FirstByteTimeout).String())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return c.fail(m, permit, "no answer within "+readable.Duration(m.Timeout).String())
	}
	return c.fail(m, permit, describe(err))
}

func isEventStream(resp *http.Response) bool {
	ct := resp.Header.Get("Content-Type")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// relayWhole reads a whole answer, checks it and passes it on. An answer
// that the agent would not be able to use (degrade_on) fails over.
func (c *call) relayWhole(m *policies.Model, permit breaker.Permit, resp *http.Response, sent time.Time, firstByte *atomic.Bool, ctx context.Context, hp hop) result {
	buf, err := bodybuf.Read(resp.Body, resp.ContentLength, maxAnswer)
	defer buf.Release() // after the answer is written
	body := buf.Bytes()
	c.waited += time.Since(sent)
	if err != nil && !errors.Is(err, bodybuf.ErrTooLarge) {
		if c.in.Context().Err() != nil {
			permit.Cancel()
			return resultCanceled
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return c.fail(m, permit, "answer not complete within "+readable.Duration(m.Timeout).String())
		}
		return c.fail(m, permit, "answer cut: "+describe(err))
	}
	// The model bills every complete answer it gave, one the gateway
	// then finds unusable included: its usage counts once the call is
	// over, read from the model's own format before any translation.
	if resp.StatusCode < 300 && err == nil {
		if u, ok := wholeUsage(hp.ep.kind, body); ok {
			defer c.reportUsage(m.Label, u)
		}
		c.try.readWhole(body)
	}
	translated := false
	if hp.crosses() {
		if len(body) > maxAnswer {
			return c.fail(m, permit, "the answer is larger than 64 MiB, too large to translate")
		}
		out, why := translateWhole(hp, resp.StatusCode, body, c.req.body)
		if why != "" {
			return c.fail(m, permit, why)
		}
		body, translated = out, true
	}
	if resp.StatusCode < 300 && len(m.DegradeOn) > 0 && !c.req.stream {
		if why := unusable(c.ep, c.req, m, body); why != "" {
			return c.fail(m, permit, why)
		}
	}
	permit.Done(resp.StatusCode, nil)
	h := c.w.Header()
	copyHeaders(h, resp.Header)
	if translated {
		h.Set("Content-Type", "application/json")
	}
	if len(body) <= maxAnswer {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	c.setHeaders(h, m, true)
	c.answered(m, resp.StatusCode)
	c.observe(m.Label, c.servedOutcome(m))
	c.w.WriteHeader(resp.StatusCode)
	_, _ = c.w.Write(body)
	if len(body) > maxAnswer {
		_, _ = io.Copy(c.w, resp.Body)
	}
	return resultAnswered
}

// observe reports a finished request.
func (c *call) observe(servedBy string, o outcome.Outcome) {
	c.span.observe(o)
	if c.g.opts.Observe != nil {
		end := c.headers
		if end.IsZero() {
			end = time.Now()
		}
		c.g.opts.Observe(c.first.Label, servedBy, o, end.Sub(c.start), trace.SpanContextFromContext(c.in.Context()))
	}
}

// servedOutcome is the outcome of an answer from m.
func (c *call) servedOutcome(m *policies.Model) outcome.Outcome {
	if m != c.first {
		return outcome.Fallback
	}
	return outcome.Success
}

// answered records who answered and logs a degraded answer.
func (c *call) answered(m *policies.Model, status int) {
	c.headers = time.Now()
	c.span.answered(m.Label, status)
	degraded := m != c.first
	c.g.count(m.Label, func(s *modelStats) {
		s.answers++
		if degraded {
			s.fallbackAnswers++
		}
	})
	if status < 300 && !c.contextHop {
		c.g.noteAnswer(c.first.Label, m.Label, degraded, strings.Join(c.reasons, "; "))
	}
	if degraded {
		c.g.log.Info("degraded answer", c.traced("model", c.first.Label, "answered_by", m.Label,
			"attempts", c.attempts, "reason", strings.Join(c.reasons, "; "))...)
	}
}

// setHeaders sets the gateway's own response headers.
func (c *call) setHeaders(h http.Header, m *policies.Model, served bool) {
	overhead := time.Since(c.start) - c.waited
	if served {
		h.Set(HeaderModel, m.Label)
		h.Set(HeaderDegraded, strconv.FormatBool(m != c.first))
	}
	h.Set(HeaderAttempts, strconv.Itoa(c.attempts))
	h.Set(HeaderOverhead, strconv.FormatFloat(float64(overhead.Microseconds())/1000, 'f', 3, 64))
}

// Request headers not forwarded upstream: hop-by-hop headers, those the
// transport sets, and (when the model has its own key) the agent's
// credentials.
var (
	hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
		"Accept-Encoding"}
	credentialHeaders = []string{"Authorization", "X-Api-Key", "Api-Key"}
)

// outHeaders sets the headers of the upstream request: the agent's, with
// the model's credentials and headers. A request crossing providers never
// carries the agent's credentials or its provider's own headers.
func (c *call) outHeaders(h http.Header, m *policies.Model, crosses bool) {
	for k, v := range c.in.Header {
		h[k] = v
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	if conn := c.in.Header.Get("Connection"); conn != "" {
		for _, k := range strings.Split(conn, ",") {
			h.Del(strings.TrimSpace(k))
		}
	}
	if crosses {
		crossHeaders(h)
	}
	if m.APIKey != "" {
		for _, k := range credentialHeaders {
			h.Del(k)
		}
		if m.Provider == policies.ProviderAnthropic {
			h.Set("X-Api-Key", m.APIKey)
		} else {
			h.Set("Authorization", "Bearer "+m.APIKey)
		}
	}
	if m.Provider == policies.ProviderAnthropic && h.Get("Anthropic-Version") == "" {
		h.Set("Anthropic-Version", "2023-06-01")
	}
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
}

// copyHeaders copies an upstream answer's end-to-end headers.
func copyHeaders(dst, src http.Header) {
	for k, v := range src {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Content-Length":
			continue
		}
		dst[k] = v
	}
}
