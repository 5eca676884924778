// Package translate converts model requests and answers between OpenAI's
// and Anthropic's wire formats, so a degradation chain can cross providers:
// an agent speaking one API is served by a model of the other, and its SDK
// receives exactly the shape it asked for.
//
// Three directions are supported (see For):
//
//	ChatToAnthropic       OpenAI Chat Completions agent, Anthropic Messages model
//	MessagesToOpenAI      Anthropic Messages agent, OpenAI Chat Completions model
//	ResponsesToAnthropic  OpenAI Responses agent, Anthropic Messages model
//
// Every function reads untrusted JSON: each checks its input itself (the
// iterative jsonguard.Scan, or encoding/json's non-recursive validator)
// before reading it, so callers need not, and none recurses on input
// depth.
//
// A request that uses something the other provider cannot do faithfully
// (n > 1, logprobs, audio, previous_response_id, …) is refused with an
// *Untranslatable error naming it: the gateway then skips that model.
package translate

import (
	"errors"
	"fmt"
)

// Direction is one way across providers.
type Direction int

const (
	None                 Direction = iota
	ChatToAnthropic                // POST /v1/chat/completions → Anthropic /v1/messages
	MessagesToOpenAI               // POST /v1/messages → OpenAI /chat/completions
	ResponsesToAnthropic           // POST /v1/responses → Anthropic /v1/messages
)

// Kinds of agent request, as the gateway names them.
const (
	KindChat     = "chat"
	KindMessage  = "message"
	KindResponse = "response"
)

// Providers, as policies names them.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
)

// For is the direction that serves an agent's request of kind (KindChat,
// KindMessage, KindResponse, or another the gateway has) with a model of
// provider; ok is false when no translation exists (embeddings, legacy
// completions, token counts: reason says so) or none is needed (None).
func For(kind, provider string) (d Direction, reason string) {
	switch {
	case kind == KindChat && provider == Anthropic:
		return ChatToAnthropic, ""
	case kind == KindResponse && provider == Anthropic:
		return ResponsesToAnthropic, ""
	case kind == KindMessage && provider == OpenAI:
		return MessagesToOpenAI, ""
	case kind == KindMessage || kind == KindChat || kind == KindResponse:
		return None, ""
	}
	if provider == Anthropic {
		return None, "an OpenAI " + kind + " request has no Anthropic equivalent"
	}
	return None, "an Anthropic " + kind + " request has no OpenAI equivalent"
}

// String names the direction for logs and reasons.
func (d Direction) String() string {
	switch d {
	case ChatToAnthropic:
		return "chat completions to anthropic messages"
	case MessagesToOpenAI:
		return "anthropic messages to openai chat completions"
	case ResponsesToAnthropic:
		return "openai responses to anthropic messages"
	}
	return "none"
}

// Target is the provider of the model the translated request goes to.
func (d Direction) Target() string {
	if d == MessagesToOpenAI {
		return OpenAI
	}
	return Anthropic
}

// Source is the provider whose shape the agent speaks.
func (d Direction) Source() string {
	if d == MessagesToOpenAI {
		return Anthropic
	}
	return OpenAI
}

// TargetKind is the kind of request sent upstream.
func (d Direction) TargetKind() string {
	if d == MessagesToOpenAI {
		return KindChat
	}
	return KindMessage
}

// Options are the model's settings a translation needs.
type Options struct {
	// MaxTokens is written to an Anthropic request that has no cap of its
	// own (Anthropic requires max_tokens); 0 means DefaultMaxTokens.
	MaxTokens int
}

// DefaultMaxTokens is the max_tokens of a request translated for an
// Anthropic model when neither the agent nor the model set a cap.
const DefaultMaxTokens = 4096

func (o Options) maxTokens() int {
	if o.MaxTokens > 0 {
		return o.MaxTokens
	}
	return DefaultMaxTokens
}

// Untranslatable says that a request uses something the target provider
// cannot do faithfully.
type Untranslatable struct {
	Reason string // e.g. `"n": 2 asks for several choices; Anthropic answers one`
}

func (u *Untranslatable) Error() string { return "cannot be translated: " + u.Reason }

// IsUntranslatable reports whether err is an *Untranslatable.
func IsUntranslatable(err error) bool {
	var u *Untranslatable
	return errors.As(err, &u)
}

func untranslatable(format string, args ...any) error {
	return &Untranslatable{Reason: sprintf(format, args...)}
}

// Request translates an agent's request body for the target provider.
// The model field is kept as the agent sent it (the gateway rewrites it).
// Errors are *Untranslatable, or a description of a malformed request.
func (d Direction) Request(body []byte, o Options) ([]byte, error) {
	switch d {
	case ChatToAnthropic:
		return chatToMessagesRequest(body, o)
	case MessagesToOpenAI:
		return messagesToChatRequest(body, o)
	case ResponsesToAnthropic:
		return responsesToMessagesRequest(body, o)
	}
	return body, nil
}

// Answer translates a whole (non-streamed) successful answer back to the
// agent's shape. request is the agent's own request body: a Responses API
// answer repeats the request's settings (instructions, tools, sampling).
func (d Direction) Answer(body, request []byte) ([]byte, error) {
	switch d {
	case ChatToAnthropic:
		return messageToChatAnswer(body)
	case MessagesToOpenAI:
		return chatToMessageAnswer(body)
	case ResponsesToAnthropic:
		return responsesAnswer(body, request)
	}
	return body, nil
}

// Error translates an upstream error answer (status >= 400) to the agent's
// provider's error shape, keeping its message. A body that is not a
// provider error becomes one whose message says what came.
func (d Direction) Error(status int, body []byte) []byte {
	return errorBody(d.Source(), status, body)
}

// Stream converts a streamed answer event by event. request is the agent's
// own request body (for what it asked of the stream, such as OpenAI's
// stream_options.include_usage).
func (d Direction) Stream(request []byte) Stream {
	switch d {
	case ChatToAnthropic:
		return newMessagesToChatStream(request)
	case MessagesToOpenAI:
		return newChatToMessagesStream(request)
	case ResponsesToAnthropic:
		return newMessagesToResponsesStream(request)
	}
	return nil
}

// Stream converts the server-sent events of a streamed answer from the
// target provider's shape to the agent's.
type Stream interface {
	// Event converts one upstream event (its "event:" name, possibly
	// empty, and its data) and appends the agent's events, framed as
	// server-sent events ("event: …\ndata: …\n\n"), to dst. It may append
	// nothing (a ping) or several events. An error means the upstream
	// event could not be read; the stream cannot go on.
	Event(dst []byte, name string, data []byte) ([]byte, error)
	// Content reports whether the events so far carried answer content:
	// text, or a tool call.
	Content() bool
	// Done reports whether the upstream stream is complete (its last
	// event was converted).
	Done() bool
}

// appendEvent frames one server-sent event.
func appendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
