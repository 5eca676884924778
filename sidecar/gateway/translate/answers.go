package translate

import (
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// answerClock is the time a translated chat.completion is "created" at
// (Anthropic's answers carry no time); tests set it.
var answerClock = time.Now

// ccCompletion is an OpenAI chat.completion.
type ccCompletion struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []ccChoice `json:"choices"`
	Usage   ccUsage    `json:"usage"`
}

type ccChoice struct {
	Index        int             `json:"index"`
	Message      ccAnswerMessage `json:"message"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type ccAnswerMessage struct {
	Role      string       `json:"role"`
	Content   *string      `json:"content"`
	Refusal   *string      `json:"refusal"`
	ToolCalls []ccToolCall `json:"tool_calls,omitempty"`
}

type ccUsage struct {
	PromptTokens        int64                `json:"prompt_tokens"`
	CompletionTokens    int64                `json:"completion_tokens"`
	TotalTokens         int64                `json:"total_tokens"`
	PromptTokensDetails *ccPromptTokenDetail `json:"prompt_tokens_details,omitempty"`
}

type ccPromptTokenDetail struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// amMessage is an Anthropic message answer.
type amMessage struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []amBlock `json:"content"`
	StopReason   string    `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        amUsage   `json:"usage"`
}

type amUsage struct {
	InputTokens          int64 `json:"input_tokens"`
	CacheReadInputTokens int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens         int64 `json:"output_tokens"`
}

// messageToChatAnswer translates an Anthropic message into an OpenAI
// chat.completion with one choice. Text blocks are joined into the
// content (null when there is none), tool_use blocks become tool_calls,
// thinking blocks are dropped. The prompt tokens count the cached ones
// too, as OpenAI counts them.
func messageToChatAnswer(body []byte) ([]byte, error) {
	root, err := readObject(body, "answer")
	if err != nil {
		return nil, err
	}
	if t := root.Get("type"); t.Exists() && t.Str != "message" {
		return nil, fmt.Errorf("the answer is of type %s, not an Anthropic message", t.Raw)
	}
	content := root.Get("content")
	if present(content) && !content.IsArray() {
		return nil, fmt.Errorf(`the answer's "content" must be an array of content blocks`)
	}
	msg := ccAnswerMessage{Role: "assistant"}
	var text strings.Builder
	content.ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "text":
			text.WriteString(b.Get("text").Str)
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, ccToolCall{
				ID:       b.Get("id").Str,
				Type:     "function",
				Function: ccFunctionCall{Name: b.Get("name").Str, Arguments: inputArguments(b.Get("input"))},
			})
		}
		return true
	})
	if text.Len() > 0 {
		s := text.String()
		msg.Content = &s
	}
	usage := root.Get("usage")
	cached := usage.Get("cache_read_input_tokens").Int()
	prompt := usage.Get("input_tokens").Int() + cached + usage.Get("cache_creation_input_tokens").Int()
	completion := usage.Get("output_tokens").Int()
	out := ccCompletion{
		ID:      root.Get("id").Str,
		Object:  "chat.completion",
		Created: answerClock().Unix(),
		Model:   root.Get("model").Str,
		Choices: []ccChoice{{Message: msg, FinishReason: finishReason(root.Get("stop_reason").Str)}},
		Usage:   ccUsage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
	}
	if cached > 0 {
		out.Usage.PromptTokensDetails = &ccPromptTokenDetail{CachedTokens: cached}
	}
	return encode(out)
}

// chatToMessageAnswer translates an OpenAI chat.completion (its first
// choice) into an Anthropic message: text (a refusal is text too), then a
// tool_use block per tool call with its arguments as the input object.
// No choice at all is an empty message that ended its turn. OpenAI does
// not say which stop sequence matched, so stop_sequence is null.
func chatToMessageAnswer(body []byte) ([]byte, error) {
	root, err := readObject(body, "answer")
	if err != nil {
		return nil, err
	}
	if o := root.Get("object"); o.Exists() && o.Str != "chat.completion" {
		return nil, fmt.Errorf("the answer is of type %s, not an OpenAI chat.completion", o.Raw)
	}
	choices := root.Get("choices")
	if present(choices) && !choices.IsArray() {
		return nil, fmt.Errorf(`the answer's "choices" must be an array`)
	}
	out := amMessage{
		ID:         root.Get("id").Str,
		Type:       "message",
		Role:       "assistant",
		Model:      root.Get("model").Str,
		Content:    []amBlock{},
		StopReason: "end_turn",
	}
	if choice := choices.Get("0"); choice.Exists() {
		m := choice.Get("message")
		out.Content = chatAnswerText(out.Content, m.Get("content"))
		out.Content = answerText(out.Content, m.Get("refusal").Str)
		m.Get("tool_calls").ForEach(func(_, call gjson.Result) bool {
			out.Content = append(out.Content, amBlock{
				Type:  "tool_use",
				ID:    call.Get("id").Str,
				Name:  call.Get("function.name").Str,
				Input: argumentsInput(call.Get("function.arguments").Str),
			})
			return true
		})
		out.StopReason = stopReason(choice.Get("finish_reason").Str)
	}
	usage := root.Get("usage")
	cached := usage.Get("prompt_tokens_details.cached_tokens").Int()
	out.Usage = amUsage{
		InputTokens:          max(usage.Get("prompt_tokens").Int()-cached, 0),
		CacheReadInputTokens: cached,
		OutputTokens:         usage.Get("completion_tokens").Int(),
	}
	return encode(out)
}

// chatAnswerText appends the text of an OpenAI answer's content: a string,
// or (from some servers) text parts, joined into one block.
func chatAnswerText(blocks []amBlock, content gjson.Result) []amBlock {
	if content.Type == gjson.String {
		return answerText(blocks, content.Str)
	}
	var text strings.Builder
	content.ForEach(func(_, p gjson.Result) bool {
		if p.Get("type").Str == "text" {
			text.WriteString(p.Get("text").Str)
		}
		return true
	})
	return answerText(blocks, text.String())
}

// answerText appends a text block to an answer, unless text is empty (an
// answer keeps even whitespace the model wrote).
func answerText(blocks []amBlock, text string) []amBlock {
	if text == "" {
		return blocks
	}
	return append(blocks, amBlock{Type: "text", Text: text})
}
