package translate

// Anthropic message answer → OpenAI Responses API "response" object.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// responsesNow is the clock of created_at (tests set it).
var responsesNow = time.Now

// responsesObject is a Responses API response object, fields in the order
// of the OpenAI API reference's example. The fields after "output" echo
// the request's settings, as OpenAI's answers do.
type responsesObject struct {
	ID                 string               `json:"id"`
	Object             string               `json:"object"`
	CreatedAt          int64                `json:"created_at"`
	Status             string               `json:"status"`
	Error              json.RawMessage      `json:"error"`
	IncompleteDetails  *responsesIncomplete `json:"incomplete_details"`
	Instructions       json.RawMessage      `json:"instructions"`
	MaxOutputTokens    json.RawMessage      `json:"max_output_tokens"`
	Model              string               `json:"model"`
	Output             []any                `json:"output"`
	ParallelToolCalls  bool                 `json:"parallel_tool_calls"`
	PreviousResponseID json.RawMessage      `json:"previous_response_id"`
	Store              bool                 `json:"store"`
	Temperature        json.RawMessage      `json:"temperature"`
	Text               json.RawMessage      `json:"text"`
	ToolChoice         json.RawMessage      `json:"tool_choice"`
	Tools              json.RawMessage      `json:"tools"`
	TopP               json.RawMessage      `json:"top_p"`
	Truncation         string               `json:"truncation"`
	Usage              *responsesUsage      `json:"usage"`
	User               json.RawMessage      `json:"user"`
	Metadata           json.RawMessage      `json:"metadata"`
}

type responsesIncomplete struct {
	Reason string `json:"reason"`
}

type responsesUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// responsesMessageItem is an output item of type "message".
type responsesMessageItem struct {
	Type    string                `json:"type"`
	ID      string                `json:"id"`
	Status  string                `json:"status"`
	Role    string                `json:"role"`
	Content []responsesOutputText `json:"content"`
}

type responsesOutputText struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

// responsesFunctionCall is an output item of type "function_call".
type responsesFunctionCall struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Status    string `json:"status"`
}

// responsesEcho holds the request settings a response object repeats.
type responsesEcho struct {
	instructions, maxOutputTokens, temperature, text json.RawMessage
	toolChoice, tools, topP, user, metadata          json.RawMessage
	parallelToolCalls                                bool
}

// responsesEchoOf reads the settings to repeat from the agent's request;
// a nil request gives OpenAI's defaults.
func responsesEchoOf(request []byte) *responsesEcho {
	e := &responsesEcho{
		instructions: json.RawMessage(`null`), maxOutputTokens: json.RawMessage(`null`),
		temperature: json.RawMessage(`null`), text: json.RawMessage(`{"format":{"type":"text"}}`),
		toolChoice: json.RawMessage(`"auto"`), tools: json.RawMessage(`[]`), topP: json.RawMessage(`null`),
		user: json.RawMessage(`null`), metadata: json.RawMessage(`{}`), parallelToolCalls: true,
	}
	if len(request) == 0 || !json.Valid(request) {
		return e
	}
	req := gjson.ParseBytes(request)
	pick := func(dst *json.RawMessage, key string, ok func(gjson.Result) bool) {
		if v := req.Get(key); v.Exists() && ok(v) {
			*dst = json.RawMessage(v.Raw)
		}
	}
	isString := func(v gjson.Result) bool { return v.Type == gjson.String }
	isNumber := func(v gjson.Result) bool { return v.Type == gjson.Number }
	pick(&e.instructions, "instructions", isString)
	pick(&e.maxOutputTokens, "max_output_tokens", isNumber)
	pick(&e.topP, "top_p", isNumber)
	pick(&e.text, "text", gjson.Result.IsObject)
	pick(&e.toolChoice, "tool_choice", func(v gjson.Result) bool { return isString(v) || v.IsObject() })
	pick(&e.tools, "tools", gjson.Result.IsArray)
	pick(&e.user, "user", isString)
	pick(&e.metadata, "metadata", gjson.Result.IsObject)
	if t, ok := responsesTemperature(req.Get("temperature")); ok {
		e.temperature = strconv.AppendFloat(nil, t, 'g', -1, 64)
	}
	e.parallelToolCalls = req.Get("parallel_tool_calls").Type != gjson.False
	return e
}

// response builds a response object with the echoed settings.
func (e *responsesEcho) response(id, model string, created int64, status, reason string, output []any, usage *responsesUsage) *responsesObject {
	r := &responsesObject{
		ID: id, Object: "response", CreatedAt: created, Status: status, Error: json.RawMessage(`null`),
		Instructions: e.instructions, MaxOutputTokens: e.maxOutputTokens, Model: model, Output: output,
		ParallelToolCalls: e.parallelToolCalls, PreviousResponseID: json.RawMessage(`null`),
		Temperature: e.temperature, Text: e.text, ToolChoice: e.toolChoice, Tools: e.tools, TopP: e.topP,
		Truncation: "disabled", Usage: usage, User: e.user, Metadata: e.metadata,
	}
	if reason != "" {
		r.IncompleteDetails = &responsesIncomplete{Reason: reason}
	}
	if r.Output == nil {
		r.Output = []any{}
	}
	return r
}

// responsesIDs is the suffix shared by the ids of a response and its
// items, taken from the upstream message id (random when there is none).
func responsesIDs(upstream string) string {
	base := strings.TrimPrefix(upstream, "msg_")
	if base == "" || len(base) > 128 || strings.ContainsFunc(base, responsesIDRune) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	return base
}

// responsesIDRune reports a character that does not belong in an id.
func responsesIDRune(r rune) bool {
	return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
}

// responsesItemID is the id of output item i: "msg_…" or "fc_…".
func responsesItemID(prefix, base string, i int) string {
	return prefix + base + "_" + strconv.Itoa(i)
}

// responsesTokens is an Anthropic usage object's counts.
type responsesTokens struct {
	input, cacheWrite, cacheRead, output int64
}

// read takes the counts present in an Anthropic usage object.
func (t *responsesTokens) read(u gjson.Result) {
	set := func(dst *int64, key string) {
		if v := u.Get(key); v.Type == gjson.Number && v.Num >= 0 && v.Num < 1e15 {
			*dst = int64(v.Num)
		}
	}
	set(&t.input, "input_tokens")
	set(&t.cacheWrite, "cache_creation_input_tokens")
	set(&t.cacheRead, "cache_read_input_tokens")
	set(&t.output, "output_tokens")
}

// usage is the Responses usage: OpenAI's input_tokens count the cached
// ones too, where Anthropic's input_tokens leave out cache reads and writes.
func (t responsesTokens) usage() *responsesUsage {
	u := &responsesUsage{InputTokens: t.input + t.cacheWrite + t.cacheRead, OutputTokens: t.output}
	u.InputTokensDetails.CachedTokens = t.cacheRead
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// responsesAnswer translates an Anthropic message answering request.
// Thinking blocks are left out, and so are empty text blocks, as the
// stream converter leaves them out.
func responsesAnswer(body, request []byte) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("the Anthropic answer is not valid JSON")
	}
	msg := gjson.ParseBytes(body)
	content := msg.Get("content")
	if !msg.IsObject() || !content.IsArray() {
		return nil, errors.New("the Anthropic answer has no content list; it is not a message")
	}
	base := responsesIDs(msg.Get("id").Str)
	output := []any{}
	content.ForEach(func(_, block gjson.Result) bool {
		switch block.Get("type").Str {
		case "text":
			if text := block.Get("text").Str; text != "" {
				output = append(output, responsesMessage(responsesItemID("msg_", base, len(output)), text))
			}
		case "tool_use":
			args := "{}"
			if in := block.Get("input"); in.IsObject() {
				var b bytes.Buffer
				if json.Compact(&b, []byte(in.Raw)) == nil {
					args = b.String()
				}
			}
			output = append(output, &responsesFunctionCall{Type: "function_call", ID: responsesItemID("fc_", base, len(output)),
				CallID: block.Get("id").Str, Name: block.Get("name").Str, Arguments: args, Status: "completed"})
		}
		return true
	})
	var tokens responsesTokens
	tokens.read(msg.Get("usage"))
	status, reason := responseStatus(msg.Get("stop_reason").Str)
	r := responsesEchoOf(request).response("resp_"+base, msg.Get("model").Str, responsesNow().Unix(), status, reason, output, tokens.usage())
	return responsesMarshal(r)
}

// responsesMessage is a completed message item holding text.
func responsesMessage(id, text string) *responsesMessageItem {
	return &responsesMessageItem{Type: "message", ID: id, Status: "completed", Role: "assistant",
		Content: []responsesOutputText{{Type: "output_text", Text: text, Annotations: []any{}}}}
}
