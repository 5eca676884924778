package gateway

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/agent-sidecar/sidecar/policies"
)

// unusable says why a successful, non-streaming answer is not one the agent
// can use, when the model's degrade_on asks to check: "" when it is fine.
func unusable(ep endpoint, req request, m *policies.Model, body []byte) string {
	var empty, invalidJSON bool
	for _, d := range m.DegradeOn {
		switch d {
		case policies.DegradeEmpty:
			empty = true
		case policies.DegradeInvalidJSON:
			invalidJSON = true
		}
	}
	if ep.kind == kindCount {
		return "" // a token count has no answer text
	}
	// A model's answer is no more trusted than a request: the iterative
	// scan bounds its nesting before gjson reads it.
	if why := notJSON(body, "the answer is ", ""); why != "" {
		return why
	}
	root := gjson.ParseBytes(body)
	text, acts := answerText(ep.kind, root)
	if empty && strings.TrimSpace(text) == "" && !acts {
		return "empty answer"
	}
	if invalidJSON && req.wantsJSON && !acts {
		if why := notJSON([]byte(text), "the answer's text is ", " although JSON was asked for"); why != "" {
			return why
		}
	}
	return ""
}

// notJSON says why b is not JSON the gateway reads, "" when it is: the
// iterative scan bounds its nesting before gjson reads it. what starts the
// message of a value nested too deep and suffix ends every message.
func notJSON(b []byte, what, suffix string) string {
	_, err := jsonguard.Scan(b, jsonguard.MaxDepth)
	switch {
	case err == nil:
		return ""
	case jsonguard.TooDeep(err):
		return what + err.Error() + suffix
	}
	return "the answer is not valid JSON" + suffix
}

// answerText returns the text of an answer, and whether it does something
// other than text (calls a tool, returns embeddings): such an answer is
// never empty.
func answerText(kind string, root gjson.Result) (string, bool) {
	var b strings.Builder
	acts := false
	switch kind {
	case kindChat:
		msg := root.Get("choices.0.message")
		b.WriteString(msg.Get("content").Str)
		b.WriteString(msg.Get("refusal").Str)
		acts = len(msg.Get("tool_calls").Array()) > 0 || msg.Get("function_call").IsObject()
	case kindCompletion:
		b.WriteString(root.Get("choices.0.text").Str)
	case kindEmbedding:
		acts = len(root.Get("data").Array()) > 0
	case kindResponse:
		for _, item := range root.Get("output").Array() {
			switch item.Get("type").Str {
			case "message":
				for _, part := range item.Get("content").Array() {
					b.WriteString(part.Get("text").Str)
					b.WriteString(part.Get("refusal").Str)
				}
			case "reasoning":
			default:
				acts = true // function calls and other tool calls
			}
		}
	case kindMessage:
		for _, block := range root.Get("content").Array() {
			switch block.Get("type").Str {
			case "text":
				b.WriteString(block.Get("text").Str)
			case "thinking", "redacted_thinking":
			default:
				acts = true // tool_use and server tools
			}
		}
	}
	return b.String(), acts
}
