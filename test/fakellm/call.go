package fakellm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

const (
	openAI    = "openai"
	anthropic = "anthropic"
)

// endpoint is one API path.
type endpoint struct {
	method   string
	provider string
	answer   func(c *call)
	// window: its prompt counts against the context window (ContextLimit)
	window bool
}

// route finds the endpoint of a path; nil for none.
func route(path string, h http.Header) *endpoint {
	switch path {
	case "/v1/chat/completions":
		return &endpoint{http.MethodPost, openAI, (*call).chat, true}
	case "/v1/completions":
		return &endpoint{http.MethodPost, openAI, (*call).completion, true}
	case "/v1/embeddings":
		return &endpoint{http.MethodPost, openAI, (*call).embeddings, false}
	case "/v1/responses":
		return &endpoint{http.MethodPost, openAI, (*call).response, true}
	case "/v1/messages":
		return &endpoint{http.MethodPost, anthropic, (*call).message, true}
	case "/v1/messages/count_tokens":
		return &endpoint{http.MethodPost, anthropic, (*call).countTokens, false}
	}
	if path == "/v1/models" || strings.HasPrefix(path, "/v1/models/") {
		provider := openAI
		if h.Get("anthropic-version") != "" {
			provider = anthropic
		}
		return &endpoint{http.MethodGet, provider, (*call).listModels, false}
	}
	return nil
}

// request holds the fields of a request body the answers depend on.
type request struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *formatType     `json:"response_format"`
	Text           json.RawMessage `json:"text"`
	OutputFormat   *formatType     `json:"output_format"`
	OutputConfig   *struct {
		Format *formatType `json:"format"`
	} `json:"output_config"`
	Input          json.RawMessage `json:"input"`
	Messages       json.RawMessage `json:"messages"`
	Prompt         json.RawMessage `json:"prompt"`
	System         json.RawMessage `json:"system"`
	Instructions   json.RawMessage `json:"instructions"`
	Tools          json.RawMessage `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

type formatType struct {
	Type string `json:"type"`
}

// wantsJSON tells whether the request asked for a JSON answer.
func (q *request) wantsJSON() bool {
	isJSON := func(f *formatType) bool {
		return f != nil && (f.Type == "json_object" || f.Type == "json_schema")
	}
	if isJSON(q.ResponseFormat) || isJSON(q.OutputFormat) || (q.OutputConfig != nil && isJSON(q.OutputConfig.Format)) {
		return true
	}
	var text struct {
		Format *formatType `json:"format"`
	}
	return len(q.Text) > 0 && json.Unmarshal(q.Text, &text) == nil && isJSON(text.Format)
}

// call is one API call being answered.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	ep     *endpoint
	req    request
	reply  string
	faults Faults
	start  time.Time
	// prompt is the estimate of the prompt's tokens
	prompt int
	// tool is how the tools of the request shape the answer
	tool toolPlan

	// what the log line says
	status int
	fault  []string
}

// verdict is what admit decided for a call.
type verdict int

const (
	answer verdict = iota
	reset
	injected
	invalid
	tooLong
	nested
)

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	c := &call{s: s, w: w, r: r, start: time.Now()}
	defer c.log()
	body, err := readBody(w, r)
	c.ep = route(r.URL.Path, r.Header)
	provider := openAI
	if c.ep != nil {
		provider = c.ep.provider
	}
	var bad *apiError
	switch {
	case err != nil:
		bad = &apiError{status: http.StatusRequestEntityTooLarge, message: "the request body is too large"}
	case c.ep == nil:
		bad = &apiError{status: http.StatusNotFound, message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)}
	case r.Method != c.ep.method:
		w.Header().Set("Allow", c.ep.method)
		bad = &apiError{status: http.StatusMethodNotAllowed,
			message: fmt.Sprintf("Method %s is not allowed for %s (use %s)", r.Method, r.URL.Path, c.ep.method)}
	case c.ep.method == http.MethodPost:
		if bad = c.parse(body); bad == nil {
			c.prompt = c.req.promptTokens()
		}
	}

	v, failStatus := s.admit(c, r, body, bad)
	if !c.wait() {
		return
	}
	switch v {
	case reset:
		c.abort(true)
	case injected:
		c.injectedError(provider, failStatus)
	case invalid:
		c.error(provider, *bad)
	case tooLong:
		c.error(provider, contextError(r.URL.Path, c.prompt, c.faults.ContextLimit))
	case nested:
		c.nested()
	default:
		c.ep.answer(c)
	}
}

// parse reads a POST body and checks it as the provider's API does
// (validate_openai.go, validate_anthropic.go); it returns the error to
// answer, nil for none, and reads how the request's tools shape the answer.
func (c *call) parse(body []byte) *apiError {
	anth := c.ep.provider == anthropic
	root := gjson.ParseBytes(body)
	if !json.Valid(body) || !root.IsObject() {
		err := json.Unmarshal(body, new(any)) // says what is wrong, and where
		if err == nil {
			err = errors.New("the body is not a JSON object")
		}
		if anth {
			return badRequest("invalid request: the body is not valid JSON: "+err.Error(), "", "")
		}
		return badRequest("We could not parse the JSON body of your request. (HINT: This likely means you aren't "+
			"using your HTTP library correctly. The OpenAI API expects a JSON payload.) "+err.Error(), "", "")
	}
	if m := root.Get("model"); m.Type != gjson.String || m.Str == "" {
		if anth {
			return badRequest("model: Field required", "", "")
		}
		return badRequest("you must provide a model parameter", "", "")
	}
	c.req.Model = root.Get("model").Str // counted in the stats even when the rest is refused
	var bad *apiError
	switch c.r.URL.Path {
	case "/v1/chat/completions":
		bad = validateOpenAIChat(root)
		c.tool = chatToolPlan(root)
	case "/v1/messages":
		bad = validateAnthropic(root, false)
		c.tool = messagesToolPlan(root)
	case "/v1/messages/count_tokens":
		bad = validateAnthropic(root, true)
	case "/v1/responses":
		c.tool = responsesToolPlan(root)
	case "/v1/embeddings":
		if _, ok := embeddingInputs(json.RawMessage(root.Get("input").Raw)); !ok {
			bad = badRequest("'input' must be a non-empty string, an array of strings or an array of token arrays", "", "")
		}
	}
	if bad != nil {
		return bad
	}
	if err := json.Unmarshal(body, &c.req); err != nil {
		if anth {
			return badRequest("invalid request: "+err.Error(), "", "")
		}
		return badRequest("Invalid request body: "+err.Error(), "", "")
	}
	return nil
}

// admit counts the call, records it as the last one and decides its fate
// from the faults, all at once so that concurrent calls each see a
// consistent state.
func (s *Server) admit(c *call, r *http.Request, body []byte, bad *apiError) (verdict, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.paths[r.URL.Path]++
	if c.req.Model != "" {
		s.models[c.req.Model]++
		s.seen[c.req.Model] = true
	}
	s.last = &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), Body: string(body)}
	c.faults, c.reply = s.faults, s.reply
	f := &s.faults

	v := answer
	switch {
	case f.Reset:
		v = reset
		c.note("reset")
	case f.FailNext > 0:
		f.FailNext--
		v = injected
		c.note(fmt.Sprintf("fail_next (%d left)", f.FailNext))
	case f.FailRate > 0 && s.rng.Float64()*100 < f.FailRate:
		v = injected
		c.note(fmt.Sprintf("fail_rate %g%%", f.FailRate))
	case bad != nil:
		v = invalid
		s.bad++
		s.last.Rejected = bad.message
		c.note("bad request: " + bad.message)
	case f.ContextLimit > 0 && c.ep.window && c.prompt > f.ContextLimit:
		v = tooLong
		c.note(fmt.Sprintf("context_limit %d < %d tokens", f.ContextLimit, c.prompt))
	case f.Nested > 0:
		v = nested
		c.note(fmt.Sprintf("nested %d deep", f.Nested))
	}
	if (v != answer && v != nested) || f.CutAfter > 0 {
		s.failed++
	}
	if v == answer && c.callsTool() {
		s.toolCalls++
	}
	return v, f.failStatus()
}

func (c *call) note(fault string) { c.fault = append(c.fault, fault) }

// nested answers 200 with arrays nested c.faults.Nested deep.
func (c *call) nested() {
	n := c.faults.Nested
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(2*n))
	c.status = http.StatusOK
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(bytes.Repeat([]byte{'['}, n))
	_, _ = c.w.Write(bytes.Repeat([]byte{']'}, n))
}

// wait applies Stall and Latency; false when the client went away.
func (c *call) wait() bool {
	ctx := c.r.Context()
	if d := c.faults.Stall; d > 0 {
		c.note("stall " + d.String())
		if !sleep(ctx, d) {
			c.note("client gone")
			return false
		}
	}
	if d := c.faults.Latency; d > 0 {
		c.note("latency " + d.String())
		if !sleep(ctx, d) {
			c.note("client gone")
			return false
		}
	}
	return true
}

// sleep waits d; false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// text is the completion a call answers: the reply (quoting the tool
// result the request ends with, if any), JSON when JSON was asked for, or
// what Empty and InvalidJSON make of it.
func (c *call) text() string {
	reply := c.reply
	if c.tool.result {
		reply += " (tool said: " + clip(c.tool.said, saidRunes) + ")"
	}
	switch {
	case c.faults.Empty:
		c.note("empty")
		return ""
	case !c.req.wantsJSON():
		return reply
	case c.faults.InvalidJSON:
		c.note("invalid_json")
		return "Sure! Here is the JSON you asked for: answer = " + reply
	}
	return jsonReply(reply)
}

// callsTool tells whether the call is answered with a tool call: its
// request has tools and ends with a user's turn, and Empty is off.
func (c *call) callsTool() bool {
	return c.tool.call && !c.faults.Empty
}

// jsonReply is reply itself when it is a JSON object, else {"answer":reply}.
func jsonReply(reply string) string {
	var obj map[string]any
	if json.Unmarshal([]byte(reply), &obj) == nil {
		return reply
	}
	b, _ := json.Marshal(map[string]string{"answer": reply})
	return string(b)
}

// log writes the call's log line.
func (c *call) log() {
	model := c.req.Model
	if model == "" {
		model = "-"
	}
	status := "-"
	if c.status != 0 {
		status = fmt.Sprint(c.status)
	}
	fault := "-"
	if len(c.fault) > 0 {
		fault = strings.Join(c.fault, ", ")
	}
	stream := ""
	if c.req.Stream {
		stream = " stream"
	}
	c.s.logLine("%s %s model=%s%s status=%s fault=%s %s", c.r.Method, c.r.URL.Path, model, stream, status,
		fault, time.Since(c.start).Round(10*time.Microsecond))
}
