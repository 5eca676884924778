package translate

// OpenAI Responses API request → Anthropic Messages request.
//
// Every top-level field of a Responses request is listed in
// responsesFields with what becomes of it: translated, dropped because it
// changes nothing the agent sees, or refused because the Anthropic model
// cannot do it faithfully. A field that is not listed is refused too, so a
// field added to the API later is never silently lost.

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// responsesFieldUse is what the translation does with a request field.
type responsesFieldUse int

const (
	responsesTranslated responsesFieldUse = iota // read by responsesToMessagesRequest
	responsesDropped                             // no effect on what the agent sees
	responsesRefused                             // refused when set (not null, false, 0 or "disabled")
)

// responsesFields lists every Responses request field this translation
// knows. A dropped field is documented in docs/translation-responses.md.
var responsesFields = map[string]responsesFieldUse{
	"model":                  responsesTranslated,
	"input":                  responsesTranslated,
	"instructions":           responsesTranslated,
	"max_output_tokens":      responsesTranslated,
	"temperature":            responsesTranslated,
	"top_p":                  responsesTranslated,
	"stream":                 responsesTranslated,
	"tools":                  responsesTranslated,
	"tool_choice":            responsesTranslated,
	"parallel_tool_calls":    responsesTranslated,
	"text":                   responsesTranslated,
	"user":                   responsesTranslated,
	"safety_identifier":      responsesTranslated,
	"include":                responsesTranslated,
	"top_logprobs":           responsesTranslated,
	"truncation":             responsesTranslated,
	"background":             responsesTranslated,
	"store":                  responsesDropped,
	"metadata":               responsesDropped,
	"service_tier":           responsesDropped,
	"stream_options":         responsesDropped,
	"prompt_cache_key":       responsesDropped,
	"prompt_cache_retention": responsesDropped,
	"max_tool_calls":         responsesDropped,
	"reasoning":              responsesDropped,
	"previous_response_id":   responsesRefused,
	"conversation":           responsesRefused,
	"prompt":                 responsesRefused,
}

// responsesRefusals says why each refused field cannot be translated.
var responsesRefusals = map[string]string{
	"previous_response_id": `"previous_response_id" continues a conversation stored at OpenAI; an Anthropic model sees only the messages it is sent, so send the whole conversation in "input" instead`,
	"conversation":         `"conversation" continues a conversation stored at OpenAI; an Anthropic model sees only the messages it is sent, so send the whole conversation in "input" instead`,
	"prompt":               `"prompt" names a prompt template stored at OpenAI, which an Anthropic model cannot read; send its text in "instructions" and "input" instead`,
}

// responsesMaxSchemaChars bounds the JSON schema quoted into the system
// prompt for text.format json_schema.
const responsesMaxSchemaChars = 1 << 20

// responsesMessagesRequest is the Anthropic request, fields in the order
// of Anthropic's documented examples.
type responsesMessagesRequest struct {
	Model       json.RawMessage      `json:"model,omitempty"`
	MaxTokens   int64                `json:"max_tokens"`
	System      string               `json:"system,omitempty"`
	Messages    []*responsesTurn     `json:"messages"`
	Metadata    *responsesMetadata   `json:"metadata,omitempty"`
	Stream      bool                 `json:"stream,omitempty"`
	Temperature *float64             `json:"temperature,omitempty"`
	TopP        *float64             `json:"top_p,omitempty"`
	Tools       []responsesTool      `json:"tools,omitempty"`
	ToolChoice  *responsesToolChoice `json:"tool_choice,omitempty"`
}

type responsesMetadata struct {
	UserID string `json:"user_id"`
}

// responsesToMessagesRequest translates a Responses API request body into
// an Anthropic Messages request body.
func responsesToMessagesRequest(body []byte, o Options) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("the request body is not valid JSON; send one JSON object")
	}
	req := gjson.ParseBytes(body)
	if !req.IsObject() {
		return nil, errors.New("the request body is not a JSON object; send one JSON object")
	}
	if err := responsesCheckFields(req); err != nil {
		return nil, err
	}
	out := &responsesMessagesRequest{MaxTokens: int64(o.maxTokens())}
	if m := req.Get("model"); m.Exists() && m.Type != gjson.Null {
		if m.Type != gjson.String {
			return nil, errors.New(`"model" is not a string; name the model as a string`)
		}
		out.Model = json.RawMessage(m.Raw)
	}
	var system []string
	if in := req.Get("instructions"); in.Exists() && in.Type != gjson.Null {
		if in.Type != gjson.String {
			return nil, errors.New(`"instructions" is not a string; send the instructions as one string`)
		}
		if strings.TrimSpace(in.Str) != "" {
			system = append(system, in.Str)
		}
	}
	conv := &responsesConversation{}
	if err := conv.input(req.Get("input")); err != nil {
		return nil, err
	}
	system = append(system, conv.system...)
	if err := responsesSettings(req, out); err != nil {
		return nil, err
	}
	format, err := responsesTextFormat(req.Get("text"))
	if err != nil {
		return nil, err
	}
	if format != "" {
		system = append(system, format)
	}
	out.System = strings.Join(system, "\n\n")
	out.Messages = conv.turns
	if err := responsesTools(req, out); err != nil {
		return nil, err
	}
	return responsesMarshal(out)
}

// responsesCheckFields refuses unknown fields and fields set to something
// Anthropic cannot do.
func responsesCheckFields(req gjson.Result) error {
	var err error
	req.ForEach(func(k, v gjson.Result) bool {
		use, known := responsesFields[k.Str]
		switch {
		case !known && k.Str == "n":
			err = untranslatable(`"n" asks for several answers; an Anthropic model gives one`)
		case !known:
			err = untranslatable("the request field %q is not a Responses API field this translation knows, so it is refused rather than dropped", responsesClip(k.Str))
		case use == responsesRefused && v.Type != gjson.Null && v.Raw != `""`:
			err = untranslatable("%s", responsesRefusals[k.Str])
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if req.Get("background").Type == gjson.True {
		return untranslatable(`"background": true runs the response at OpenAI to be fetched later; an Anthropic model answers only while the request waits`)
	}
	if t := req.Get("truncation"); t.Exists() && t.Type != gjson.Null && t.Str != "disabled" {
		return untranslatable(`"truncation": %s lets OpenAI drop the oldest input to fit the context window; an Anthropic model refuses an input that does not fit instead`, responsesClip(t.Raw))
	}
	if n := req.Get("top_logprobs"); n.Type == gjson.Number && n.Num > 0 {
		return untranslatable(`"top_logprobs" asks for token log probabilities, which Anthropic does not return`)
	}
	req.Get("include").ForEach(func(_, v gjson.Result) bool {
		if v.Str == "message.output_text.logprobs" {
			err = untranslatable(`"include" asks for "message.output_text.logprobs", token log probabilities, which Anthropic does not return`)
		}
		return err == nil
	})
	return err
}

// responsesSettings copies the sampling and output settings.
func responsesSettings(req gjson.Result, out *responsesMessagesRequest) error {
	if m := req.Get("max_output_tokens"); m.Exists() && m.Type != gjson.Null {
		if m.Type != gjson.Number || m.Num < 1 || m.Num > math.MaxInt32 || m.Num != math.Trunc(m.Num) {
			return errors.New(`"max_output_tokens" is not a positive whole number; set it to the most tokens the answer may have`)
		}
		out.MaxTokens = int64(m.Num)
	}
	if t := req.Get("temperature"); t.Exists() && t.Type != gjson.Null {
		v, ok := responsesTemperature(t)
		if !ok {
			return errors.New(`"temperature" is not a number from 0 to 2; set it in that range or leave it out`)
		}
		out.Temperature = &v
	}
	if p := req.Get("top_p"); p.Exists() && p.Type != gjson.Null {
		if p.Type != gjson.Number || p.Num < 0 || p.Num > 1 {
			return errors.New(`"top_p" is not a number from 0 to 1; set it in that range or leave it out`)
		}
		if p.Num < 1 { // 1 samples from every token: the same as not set
			v := p.Num
			out.TopP = &v
		}
	}
	if s := req.Get("stream"); s.Exists() && s.Type != gjson.Null {
		if !s.IsBool() {
			return errors.New(`"stream" is not true or false`)
		}
		out.Stream = s.Bool()
	}
	user := req.Get("safety_identifier")
	if user.Type != gjson.String || user.Str == "" {
		user = req.Get("user")
	}
	// Anthropic's user_id takes at most 256 characters: a longer one is
	// left out rather than cut into another user's identifier.
	if user.Type == gjson.String && user.Str != "" && len(user.Str) <= 256 {
		out.Metadata = &responsesMetadata{UserID: user.Str}
	}
	return nil
}

// responsesTemperature is the Anthropic temperature for an OpenAI one:
// OpenAI's range is 0-2, Anthropic's 0-1, so values above 1 become 1, the
// most varied sampling Anthropic allows.
func responsesTemperature(t gjson.Result) (float64, bool) {
	if t.Type != gjson.Number || t.Num < 0 || t.Num > 2 {
		return 0, false
	}
	return min(t.Num, 1), true
}

// responsesTextFormat is the system instruction that asks for the output
// format of text.format; Anthropic does not enforce it (see the docs).
func responsesTextFormat(text gjson.Result) (string, error) {
	if !text.Exists() || text.Type == gjson.Null {
		return "", nil
	}
	if !text.IsObject() {
		return "", errors.New(`"text" is not an object; send {"format": {"type": "text"}} or leave it out`)
	}
	f := text.Get("format")
	if !f.Exists() || f.Type == gjson.Null {
		return "", nil
	}
	switch f.Get("type").Str {
	case "text":
		return "", nil
	case "json_object":
		return "Answer with one JSON object and nothing else: no prose, no code fences.", nil
	case "json_schema":
		s := f.Get("schema")
		if !s.IsObject() {
			return "", errors.New(`"text.format.schema" is not an object; json_schema needs the JSON schema the answer must follow`)
		}
		if len(s.Raw) > responsesMaxSchemaChars {
			return "", errors.New(`"text.format.schema" is larger than 1 MiB; send a smaller schema`)
		}
		var b strings.Builder
		b.WriteString("Answer with one JSON value that conforms to the following JSON schema")
		if name := f.Get("name").Str; name != "" {
			b.WriteString(` (named "` + name + `")`)
		}
		b.WriteString(", and nothing else: no prose, no code fences.")
		if d := f.Get("description").Str; d != "" {
			b.WriteString(" The schema's purpose: " + d)
		}
		var schema bytes.Buffer
		if err := json.Compact(&schema, []byte(s.Raw)); err != nil {
			return "", errors.New(`"text.format.schema" is not valid JSON`)
		}
		b.WriteString("\n\n")
		b.WriteString(schema.String())
		return b.String(), nil
	}
	return "", untranslatable(`"text.format" type %s is not one of text, json_object and json_schema`, responsesClip(f.Get("type").Raw))
}

// responsesMarshal encodes v without escaping <, > and &, which are
// common in prompts and code.
func responsesMarshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// responsesClip shortens a value quoted in an error message.
func responsesClip(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
