package fakellm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// includeUsage tells whether a streaming request asked for a usage chunk.
func (q *request) includeUsage() bool {
	return q.StreamOptions != nil && q.StreamOptions.IncludeUsage
}

func openAIUsage(prompt, completion int) obj {
	return obj{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}}
}

// chat answers POST /v1/chat/completions.
func (c *call) chat() {
	if c.callsTool() {
		c.chatToolCall()
		return
	}
	text := c.text()
	deltas := []obj{{{"role", "assistant"}, {"content", ""}, {"refusal", nil}}}
	for _, p := range pieces(text) {
		deltas = append(deltas, obj{{"content", p}})
	}
	c.chatReply(obj{{"role", "assistant"}, {"content", text}, {"refusal", nil}, {"annotations", []any{}}},
		deltas, "stop", openAIUsage(c.prompt, tokens(text)))
}

// chatToolCall answers a chat completion with a call to c.tool: an
// assistant message with tool_calls and finish_reason "tool_calls";
// streamed, the first chunk names the call (index, id, type, name) and the
// next ones carry its arguments in pieces, as OpenAI streams them.
func (c *call) chatToolCall() {
	callID := newID("call_")
	call := obj{{"id", callID}, {"type", "function"}, {"function", obj{{"name", c.tool.name}, {"arguments", c.tool.args}}}}
	head := obj{{"index", 0}, {"id", callID}, {"type", "function"}, {"function", obj{{"name", c.tool.name}, {"arguments", ""}}}}
	deltas := []obj{{{"role", "assistant"}, {"content", nil}, {"tool_calls", []any{head}}, {"refusal", nil}}}
	for _, p := range pieces(c.tool.args) {
		deltas = append(deltas, obj{{"tool_calls", []any{obj{{"index", 0}, {"function", obj{{"arguments", p}}}}}}})
	}
	c.chatReply(obj{{"role", "assistant"}, {"content", nil}, {"tool_calls", []any{call}}, {"refusal", nil},
		{"annotations", []any{}}}, deltas, "tool_calls", openAIUsage(c.prompt, tokens(c.tool.name)+tokens(c.tool.args)))
}

// chatReply writes a chat completion: whole, with message, or streamed,
// one chunk per delta, then a chunk with finish, then (when the request
// asked for it) the usage chunk and [DONE].
func (c *call) chatReply(message obj, deltas []obj, finish string, usage obj) {
	id, created, model := newID("chatcmpl-"), time.Now().Unix(), c.req.Model
	if !c.req.Stream {
		c.writeJSON(http.StatusOK, obj{
			{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model},
			{"choices", []any{obj{
				{"index", 0},
				{"message", message},
				{"logprobs", nil},
				{"finish_reason", finish},
			}}},
			{"usage", usage},
		})
		return
	}
	chunk := func(delta obj, finish any) event {
		o := obj{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
			{"choices", []any{obj{{"index", 0}, {"delta", delta}, {"logprobs", nil}, {"finish_reason", finish}}}}}
		if c.req.includeUsage() {
			o = append(o, kv{"usage", nil})
		}
		return dataEvent(o)
	}
	events := make([]event, 0, len(deltas)+3)
	for _, d := range deltas {
		events = append(events, chunk(d, nil))
	}
	events = append(events, chunk(obj{}, finish))
	if c.req.includeUsage() {
		events = append(events, dataEvent(obj{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created},
			{"model", model}, {"choices", []any{}}, {"usage", usage}}))
	}
	c.stream(append(events, doneEvent))
}

// completion answers POST /v1/completions (the legacy API).
func (c *call) completion() {
	text := c.text()
	id, created, model := newID("cmpl-"), time.Now().Unix(), c.req.Model
	usage := openAIUsage(c.prompt, tokens(text))
	answer := func(text string, finish any) obj {
		return obj{{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model},
			{"choices", []any{obj{{"text", text}, {"index", 0}, {"logprobs", nil}, {"finish_reason", finish}}}}}
	}
	if !c.req.Stream {
		c.writeJSON(http.StatusOK, append(answer(text, "stop"), kv{"usage", usage}))
		return
	}
	var events []event
	for _, p := range pieces(text) {
		events = append(events, dataEvent(answer(p, nil)))
	}
	events = append(events, dataEvent(answer("", "stop")))
	if c.req.includeUsage() {
		events = append(events, dataEvent(obj{{"id", id}, {"object", "text_completion"}, {"created", created},
			{"model", model}, {"choices", []any{}}, {"usage", usage}}))
	}
	c.stream(append(events, doneEvent))
}

// embeddingDims is the length of embeddings unless a request asks for
// "dimensions".
const embeddingDims = 8

// embeddings answers POST /v1/embeddings: one unit vector per input,
// derived from the input's text, so equal inputs get equal vectors.
func (c *call) embeddings() {
	inputs, _ := embeddingInputs(c.req.Input)
	dims := embeddingDims
	if c.req.Dimensions > 0 && c.req.Dimensions <= 4096 {
		dims = c.req.Dimensions
	}
	data := make([]any, len(inputs))
	prompt := 0
	for i, in := range inputs {
		prompt += max(1, tokens(in))
		vec := embed(in, dims)
		var value any = vec
		if c.req.EncodingFormat == "base64" {
			b := make([]byte, 0, 4*len(vec))
			for _, f := range vec {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
			}
			value = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = obj{{"object", "embedding"}, {"index", i}, {"embedding", value}}
	}
	c.writeJSON(http.StatusOK, obj{{"object", "list"}, {"data", data}, {"model", c.req.Model},
		{"usage", obj{{"prompt_tokens", prompt}, {"total_tokens", prompt}}}})
}

// embeddingInputs reads "input": a string, an array of strings, an array
// of tokens or an array of token arrays; each becomes one text.
func embeddingInputs(raw json.RawMessage) ([]string, bool) {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return []string{v}, v != ""
	case []any:
		if len(v) == 0 {
			return nil, false
		}
		if _, isToken := v[0].(float64); isToken {
			return []string{string(raw)}, true
		}
		out := make([]string, len(v))
		for i, e := range v {
			switch e := e.(type) {
			case string:
				out[i] = e
			case []any:
				out[i] = string(mustJSON(e))
			default:
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

// embed is a unit vector of dims values derived from text.
func embed(text string, dims int) []float32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(text))
	seed := h.Sum64()
	r := rand.New(rand.NewPCG(seed, seed>>1|1))
	vec := make([]float32, dims)
	var norm float64
	for i := range vec {
		x := r.NormFloat64()
		vec[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range vec {
		vec[i] = float32(float64(vec[i]) / norm)
	}
	return vec
}

// listModels answers GET /v1/models and GET /v1/models/{id}: DefaultModel
// and every model seen so far, in OpenAI's shape, or Anthropic's when the
// request carries anthropic-version.
func (c *call) listModels() {
	c.s.mu.Lock()
	names := []string{DefaultModel}
	for m := range c.s.seen {
		if m != DefaultModel {
			names = append(names, m)
		}
	}
	c.s.mu.Unlock()
	slices.Sort(names)

	anth := c.ep.provider == anthropic
	entry := func(name string) obj {
		if anth {
			return obj{{"type", "model"}, {"id", name}, {"display_name", name},
				{"created_at", time.Unix(c.s.created, 0).UTC().Format(time.RFC3339)}}
		}
		return obj{{"id", name}, {"object", "model"}, {"created", c.s.created}, {"owned_by", "fakellm"}}
	}
	if id, ok := strings.CutPrefix(c.r.URL.Path, "/v1/models/"); ok {
		c.writeJSON(http.StatusOK, entry(id))
		return
	}
	data := make([]any, len(names))
	for i, n := range names {
		data[i] = entry(n)
	}
	if anth {
		c.writeJSON(http.StatusOK, obj{{"data", data}, {"has_more", false},
			{"first_id", names[0]}, {"last_id", names[len(names)-1]}})
		return
	}
	c.writeJSON(http.StatusOK, obj{{"object", "list"}, {"data", data}})
}
