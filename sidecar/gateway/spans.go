package gateway

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// The sidecar's own span attributes, and gen_ai.system: the GenAI
// conventions replaced it by gen_ai.provider.name, which many backends do
// not read yet, so both are set.
const (
	attrSystem         = attribute.Key("gen_ai.system")
	attrModel          = attribute.Key("sidecar.model")
	attrFallbackIndex  = attribute.Key("sidecar.fallback_index")
	attrAttempt        = attribute.Key("sidecar.attempt")
	attrBreakerState   = attribute.Key("sidecar.breaker.state")
	attrTranslated     = attribute.Key("sidecar.translated")
	attrStream         = attribute.Key("sidecar.stream")
	attrTTFT           = attribute.Key("sidecar.time_to_first_token_ms")
	attrServedBy       = attribute.Key("sidecar.served_by")
	attrDegraded       = attribute.Key("sidecar.degraded")
	attrDegradedReason = attribute.Key("sidecar.degraded_reason")
	attrAttempts       = attribute.Key("sidecar.attempts")
	attrOutcome        = attribute.Key("sidecar.outcome")
	attrTarget         = attribute.Key("sidecar.target")
	attrReason         = attribute.Key("sidecar.reason")
)

// operation is the GenAI operation name of a kind of request: chat for
// chat completions, the Responses API and Anthropic's messages. A token
// count has no name in the conventions: "count_tokens".
func operation(kind string) string {
	switch kind {
	case kindCompletion:
		return "text_completion"
	case kindEmbedding:
		return "embeddings"
	case kindCount:
		return "count_tokens"
	}
	return "chat"
}

// maxAttr bounds a string a request or an answer puts in a span (the model
// a request names, an answer's id or model).
const maxAttr = 256

// maxFinishReasons bounds the finish reasons read of one answer (one per
// choice).
const maxFinishReasons = 16

func clip(s string) string {
	if len(s) > maxAttr {
		s = s[:maxAttr]
	}
	return strings.ToValidUTF8(s, "")
}

// requestSpan is the server span of one /llm/ request, and what its
// attributes will say when it ends. A nil *requestSpan (tracing off) does
// nothing.
type requestSpan struct {
	span     trace.Span
	status   int    // the answer's status, 0 before it has one
	servedBy string // the label of the model that answered
	outcome  outcome.Outcome
	observed bool   // outcome is set
	failure  string // the span's error description, "" when it did not fail
	attempts int
	degraded bool
	reason   string // why the model asked for did not answer
}

// startRequest starts the server span of a request below /llm/, child of
// the caller's context (W3C headers), and returns the request carrying it.
// It is named once the model is known (named).
func (g *Gateway) startRequest(r *http.Request, ep endpoint) (*requestSpan, *http.Request) {
	ctx := tracing.Propagation().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := g.opts.Tracer.Start(ctx, "llm", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
			semconv.GenAIOperationNameKey.String(operation(ep.kind))))
	return &requestSpan{span: span}, r.WithContext(ctx)
}

// named names the span after the model the request asks for: its label
// when it is configured (m), else the name as asked.
func (s *requestSpan) named(asked string, m *policies.Model) {
	if s == nil {
		return
	}
	asked = clip(asked)
	name := asked
	if m != nil {
		name = m.Label
	}
	s.span.SetName("llm " + name)
	s.span.SetAttributes(semconv.GenAIRequestModel(asked))
}

// refused records an answer the gateway gave itself (a bad request, a
// spent budget, no model left).
func (s *requestSpan) refused(status int) {
	if s != nil {
		s.status = status
	}
}

// answered records the answer of model label reaching the agent.
func (s *requestSpan) answered(label string, status int) {
	if s != nil {
		s.status, s.servedBy = status, label
	}
}

// observe records the request's outcome.
func (s *requestSpan) observe(o outcome.Outcome) {
	if s != nil {
		s.outcome, s.observed = o, true
	}
}

// fail records why the request failed.
func (s *requestSpan) fail(why string) {
	if s != nil {
		s.failure = why
	}
}

// skipped adds the event of a model the chain passed over without
// calling it (or whose answer it could not use), with the reason the
// gateway gives in its 503 and its degradation.
func (s *requestSpan) skipped(label, why string) {
	if s == nil {
		return
	}
	s.span.AddEvent("skipped", trace.WithAttributes(attrTarget.String(label), attrReason.String(why)))
}

// done records what the call came to: its attempts, and whether (and why)
// a model other than the one asked for answered.
func (s *requestSpan) done(c *call) {
	if s == nil {
		return
	}
	s.attempts = c.attempts
	s.degraded = s.servedBy != "" && s.servedBy != c.first.Label
	if (s.degraded || s.servedBy == "") && len(c.reasons) > 0 {
		s.reason = strings.Join(c.reasons, "; ")
	}
	if s.failure == "" && c.in.Context().Err() != nil {
		s.failure = "canceled: the agent went away"
	}
}

// end sets the span's closing attributes and ends it.
func (s *requestSpan) end() {
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, attrServedBy.String(s.servedBy), attrDegraded.Bool(s.degraded), attrAttempts.Int(s.attempts))
	if s.reason != "" {
		attrs = append(attrs, attrDegradedReason.String(s.reason))
	}
	if s.status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(s.status))
	}
	if s.observed {
		attrs = append(attrs, attrOutcome.String(s.outcome.String()))
	}
	s.span.SetAttributes(attrs...)
	if why := failedWith(s.failure, s.status, 500); why != "" {
		s.span.SetStatus(codes.Error, why)
	}
	s.span.End()
}

// attemptSpan is the client span of one model call, and what the answer
// said of itself.
type attemptSpan struct {
	span       trace.Span
	start      time.Time
	kind       string // of the upstream request
	status     int
	failure    string
	firstToken bool
	named      bool // the answer's id and model were looked for
	id, model  string
	finish     []string
	usage      Usage
	hasUsage   bool
}

// startTry starts the span of the call of model m through h (tracing on)
// and writes its context into the call's headers, in place of the
// agent's: the model, or a proxy before it, sees the attempt as the
// parent.
func (c *call) startTry(out *http.Request, m *policies.Model, b *breaker.Breaker, h hop) {
	op := operation(h.ep.kind)
	port, _ := strconv.Atoi(out.URL.Port())
	if port == 0 {
		port = 80
		if out.URL.Scheme == "https" {
			port = 443
		}
	}
	index := len(c.tried) - 1 // models before m in this request's chain
	if c.from != c.first {
		index++ // the model asked for, passed over for a spent budget
	}
	ctx, span := c.g.opts.Tracer.Start(c.in.Context(), op+" "+m.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.GenAIOperationNameKey.String(op),
			semconv.GenAIProviderNameKey.String(m.Provider),
			attrSystem.String(m.Provider),
			semconv.GenAIRequestModel(m.Name),
			attrModel.String(m.Label),
			attrFallbackIndex.Int(index),
			attrAttempt.Int(c.attempts),
			attrBreakerState.String(b.State().String()),
			attrTranslated.Bool(h.crosses()),
			attrStream.Bool(c.req.stream),
			semconv.ServerAddress(out.URL.Hostname()),
			semconv.ServerPort(port),
		))
	tracing.Inject(ctx, out.Header)
	c.try = &attemptSpan{span: span, start: time.Now(), kind: h.ep.kind}
}

// endTry ends the span of the call in progress with what its answer said.
func (c *call) endTry() {
	t := c.try
	c.try = nil
	attrs := make([]attribute.KeyValue, 0, 7)
	if t.status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(t.status))
	}
	if t.model != "" {
		attrs = append(attrs, semconv.GenAIResponseModel(t.model))
	}
	if t.id != "" {
		attrs = append(attrs, semconv.GenAIResponseID(t.id))
	}
	if len(t.finish) > 0 {
		attrs = append(attrs, semconv.GenAIResponseFinishReasons(t.finish...))
	}
	if t.hasUsage {
		// The conventions count every input token, those read from or
		// written to a cache included.
		in := t.usage.Input + t.usage.CachedInput + t.usage.CacheWrite
		attrs = append(attrs, semconv.GenAIUsageInputTokensKey.Int64(in), semconv.GenAIUsageOutputTokensKey.Int64(t.usage.Output))
	}
	t.span.SetAttributes(attrs...)
	why := failedWith(t.failure, t.status, 400)
	switch {
	case why != "":
	case c.in.Context().Err() != nil:
		why = "canceled: the agent went away"
	case t.status == 0:
		why = "no answer"
	}
	if why != "" {
		t.span.SetStatus(codes.Error, why)
	}
	t.span.End()
}

// failedWith is the error description a span ends with: why it failed,
// else its answer's HTTP status when that is bad (bad or above); "" when
// neither says it failed.
func failedWith(failure string, status, bad int) string {
	switch {
	case failure != "":
		return failure
	case status >= bad:
		return strconv.Itoa(status) + " " + http.StatusText(status)
	}
	return ""
}

// failed records why the call failed.
func (t *attemptSpan) failed(why string) {
	if t != nil {
		t.failure = why
	}
}

// gotHeaders records the answer's status. For an answer that is not a
// stream, the time to its headers stands for the time to first token: the
// body comes whole, as soon as the model has finished.
func (t *attemptSpan) gotHeaders(resp *http.Response) {
	if t == nil {
		return
	}
	t.status = resp.StatusCode
	if resp.StatusCode < 300 && !isEventStream(resp) {
		t.tokenNow()
	}
}

// tokenNow records the first token, once.
func (t *attemptSpan) tokenNow() {
	if t.firstToken {
		return
	}
	t.firstToken = true
	t.span.AddEvent("first_token")
	t.span.SetAttributes(attrTTFT.Float64(float64(time.Since(t.start).Microseconds()) / 1000))
}

// setUsage records the answer's usage.
func (t *attemptSpan) setUsage(u Usage) {
	if t != nil {
		t.usage, t.hasUsage = u, true
	}
}

// readWhole reads a whole successful answer (the model's own format) for
// its id, model and finish reasons.
func (t *attemptSpan) readWhole(body []byte) {
	if t == nil {
		return
	}
	switch t.kind {
	case kindChat, kindCompletion:
		t.names(body, "id", "model")
		t.choicesFinish(body)
	case kindEmbedding:
		t.names(body, "", "model")
	case kindResponse:
		t.names(body, "id", "model")
		t.finishOf(gjson.GetBytes(body, "status"))
	case kindMessage:
		t.names(body, "id", "model")
		t.finishOf(gjson.GetBytes(body, "stop_reason"))
	}
}

// awaitsToken reports whether the attempt is traced and its stream has
// not yet sent content (see).
func (t *attemptSpan) awaitsToken() bool { return t != nil && !t.firstToken }

// see reads a stream's upstream event as it passes: the first with
// content or a tool call (the caller's eventContent, read while
// awaitsToken) is the first token; the answer's id and model, and its
// finish reasons, are read from the events that carry them, each found by
// a cheap test before it is parsed.
func (t *attemptSpan) see(ev event, content bool) {
	if t == nil || len(ev.data) == 0 || ev.data[0] != '{' {
		return
	}
	if content {
		t.tokenNow()
	}
	switch t.kind {
	case kindChat, kindCompletion:
		if !t.named {
			t.names(ev.data, "id", "model")
		}
		// Every chunk has "finish_reason":null but the last of a choice.
		if bytes.Contains(ev.data, []byte(`"finish_reason"`)) && !bytes.Contains(ev.data, []byte(`"finish_reason":null`)) {
			t.choicesFinish(ev.data)
		}
	case kindMessage:
		switch eventType(ev) {
		case "message_start":
			t.names(ev.data, "message.id", "message.model")
		case "message_delta":
			t.finish = t.finish[:0]
			t.finishOf(gjson.GetBytes(ev.data, "delta.stop_reason"))
		}
	case kindResponse:
		switch eventType(ev) {
		case "response.created":
			t.names(ev.data, "response.id", "response.model")
		case "response.completed", "response.incomplete", "response.failed":
			t.finishOf(gjson.GetBytes(ev.data, "response.status"))
		}
	}
}

// names reads the answer's id and model at these paths ("" for none).
func (t *attemptSpan) names(data []byte, idPath, modelPath string) {
	t.named = true
	if idPath != "" {
		if v := gjson.GetBytes(data, idPath); v.Type == gjson.String {
			t.id = clip(v.Str)
		}
	}
	if v := gjson.GetBytes(data, modelPath); v.Type == gjson.String {
		t.model = clip(v.Str)
	}
}

// choicesFinish adds the finish reasons of an answer's (or a chunk's)
// choices.
func (t *attemptSpan) choicesFinish(data []byte) {
	gjson.GetBytes(data, "choices").ForEach(func(_, choice gjson.Result) bool {
		t.finishOf(choice.Get("finish_reason"))
		return len(t.finish) < maxFinishReasons
	})
}

func (t *attemptSpan) finishOf(v gjson.Result) {
	if v.Type == gjson.String && v.Str != "" && len(t.finish) < maxFinishReasons {
		t.finish = append(t.finish, clip(v.Str))
	}
}
