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
	text := c.text()
	id, created, model := newID("chatcmpl-"), time.Now().Unix(), c.req.Model
	usage := openAIUsage(c.req.promptTokens(), tokens(text))
	if !c.req.Stream {
		c.writeJSON(http.StatusOK, obj{
			{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model},
			{"choices", []any{obj{
				{"index", 0},
				{"message", obj{{"role", "assistant"}, {"content", text}, {"refusal", nil}, {"annotations", []any{}}}},
				{"logprobs", nil},
				{"finish_reason", "stop"},
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
	events := []event{chunk(obj{{"role", "assistant"}, {"content", ""}, {"refusal", nil}}, nil)}
	for _, p := range pieces(text) {
		events = append(events, chunk(obj{{"content", p}}, nil))
	}
	events = append(events, chunk(obj{}, "stop"))
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
	usage := openAIUsage(c.req.promptTokens(), tokens(text))
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

// response answers POST /v1/responses (the Responses API).
func (c *call) response() {
	text := c.text()
	id, msgID, created := newID("resp_"), newID("msg_"), time.Now().Unix()
	prompt, completion := c.req.promptTokens(), tokens(text)
	usage := obj{{"input_tokens", prompt}, {"input_tokens_details", obj{{"cached_tokens", 0}}},
		{"output_tokens", completion}, {"output_tokens_details", obj{{"reasoning_tokens", 0}}},
		{"total_tokens", prompt + completion}}
	part := func(text string) obj {
		return obj{{"type", "output_text"}, {"text", text}, {"annotations", []any{}}, {"logprobs", []any{}}}
	}
	message := func(status string, content ...any) obj {
		if content == nil {
			content = []any{}
		}
		return obj{{"type", "message"}, {"id", msgID}, {"status", status}, {"role", "assistant"}, {"content", content}}
	}
	resp := func(status string, output []any, usage any) obj {
		textConfig := any(obj{{"format", obj{{"type", "text"}}}})
		if len(c.req.Text) > 0 {
			textConfig = c.req.Text
		}
		var instructions any
		if len(c.req.Instructions) > 0 {
			instructions = c.req.Instructions
		}
		return obj{{"id", id}, {"object", "response"}, {"created_at", created}, {"status", status},
			{"error", nil}, {"incomplete_details", nil}, {"instructions", instructions}, {"max_output_tokens", nil},
			{"model", c.req.Model}, {"output", output}, {"parallel_tool_calls", true}, {"previous_response_id", nil},
			{"reasoning", obj{{"effort", nil}, {"summary", nil}}}, {"store", true}, {"temperature", 1.0},
			{"text", textConfig}, {"tool_choice", "auto"}, {"tools", []any{}}, {"top_p", 1.0},
			{"truncation", "disabled"}, {"usage", usage}, {"user", nil}, {"metadata", obj{}}}
	}
	done := message("completed", part(text))
	if !c.req.Stream {
		c.writeJSON(http.StatusOK, resp("completed", []any{done}, usage))
		return
	}
	var events []event
	add := func(typ string, fields ...kv) {
		o := append(obj{{"type", typ}, {"sequence_number", len(events)}}, fields...)
		events = append(events, namedEvent(typ, o))
	}
	at := []kv{{"item_id", msgID}, {"output_index", 0}, {"content_index", 0}}
	add("response.created", kv{"response", resp("in_progress", []any{}, nil)})
	add("response.in_progress", kv{"response", resp("in_progress", []any{}, nil)})
	add("response.output_item.added", kv{"output_index", 0}, kv{"item", message("in_progress")})
	add("response.content_part.added", append(at, kv{"part", part("")})...)
	for _, p := range pieces(text) {
		add("response.output_text.delta", append(at, kv{"delta", p}, kv{"logprobs", []any{}})...)
	}
	add("response.output_text.done", append(at, kv{"text", text}, kv{"logprobs", []any{}})...)
	add("response.content_part.done", append(at, kv{"part", part(text)})...)
	add("response.output_item.done", kv{"output_index", 0}, kv{"item", done})
	add("response.completed", kv{"response", resp("completed", []any{done}, usage)})
	c.stream(events)
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
