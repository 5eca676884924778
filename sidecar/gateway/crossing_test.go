package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// fakeServer is a fakellm model server (strict about requests, as the
// providers are) on a loopback port.
func fakeServer(t *testing.T, name, reply string) (*fakellm.Server, string) {
	t.Helper()
	f := fakellm.New(fakellm.Options{Name: name, Reply: reply})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// crossConfig is gpt-4o (OpenAI) → claude-haiku (Anthropic), and
// claude-sonnet (Anthropic) → gpt-4o-mini (OpenAI), each with its own key.
func crossConfig(gpt, claude, claudeBig, gptMini string) *policies.Config {
	m := func(label, provider, url, key, fallback string) policies.Model {
		return policies.Model{Label: label, Name: label + "-upstream", Provider: provider, BaseURL: url, APIKey: key,
			Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: 2 * time.Second,
			StreamIdleTimeout: 2 * time.Second, Fallback: fallback}
	}
	return &policies.Config{
		Breakers: map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)},
		Models: map[string]policies.Model{
			"gpt-4o":        m("gpt-4o", policies.ProviderOpenAI, gpt+"/v1", "sk-openai-model", "claude-haiku"),
			"claude-haiku":  m("claude-haiku", policies.ProviderAnthropic, claude, "sk-ant-model", ""),
			"claude-sonnet": m("claude-sonnet", policies.ProviderAnthropic, claudeBig, "sk-ant-big", "gpt-4o-mini"),
			"gpt-4o-mini":   m("gpt-4o-mini", policies.ProviderOpenAI, gptMini+"/v1", "sk-openai-mini", ""),
		},
		Gateway: policies.Gateway{MaxRequestBytes: 1 << 20},
	}
}

type crossFakes struct {
	gpt, claude, claudeBig, gptMini *fakellm.Server
}

func crossGateway(t *testing.T) (string, *Gateway, crossFakes) {
	t.Helper()
	var f crossFakes
	var gptURL, claudeURL, bigURL, miniURL string
	f.gpt, gptURL = fakeServer(t, "gpt-4o", "From GPT.")
	f.claude, claudeURL = fakeServer(t, "claude-haiku", "From Claude.")
	f.claudeBig, bigURL = fakeServer(t, "claude-sonnet", "From the big Claude.")
	f.gptMini, miniURL = fakeServer(t, "gpt-4o-mini", "From the mini GPT.")
	base, g := gw(t, crossConfig(gptURL, claudeURL, bigURL, miniURL))
	return base, g, f
}

// An OpenAI chat agent whose OpenAI model is down is served by the
// Anthropic fallback: the request reaches it in Anthropic's shape (the
// fake refuses anything else), with the model's key and none of the
// agent's credentials, and the agent gets a chat.completion.
func TestOpenAIAgentServedByAnthropicWhenOpenAIIsDown(t *testing.T) {
	base, _, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	req := `{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello."}],"max_tokens":50}`
	resp, body := post(t, base+"/v1/chat/completions", req, "Authorization", "Bearer sk-agent-openai-key",
		"OpenAI-Organization", "org-agent")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "claude-haiku" || resp.Header.Get(HeaderDegraded) != "true" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	var cc struct {
		Object  string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(body), &cc); err != nil || cc.Object != "chat.completion" || len(cc.Choices) != 1 ||
		!strings.Contains(cc.Choices[0].Message.Content, "From Claude.") || cc.Choices[0].FinishReason != "stop" ||
		cc.Usage.PromptTokens == 0 {
		t.Fatalf("not a chat completion from Claude: %v %s", err, body)
	}
	last, _ := f.claude.Last()
	if last.Path != "/v1/messages" || last.Header.Get("X-Api-Key") != "sk-ant-model" ||
		last.Header.Get("Authorization") != "" || last.Header.Get("Openai-Organization") != "" ||
		last.Header.Get("Anthropic-Version") == "" {
		t.Fatalf("the Anthropic model got %s with headers %v", last.Path, last.Header)
	}
	if !strings.Contains(last.Body, `"system"`) || !strings.Contains(last.Body, `"claude-haiku-upstream"`) {
		t.Fatalf("translated request: %s", last.Body)
	}
}

// The reverse: an Anthropic agent whose Anthropic model is down is served
// by the OpenAI fallback, and gets an Anthropic message.
func TestAnthropicAgentServedByOpenAIWhenAnthropicIsDown(t *testing.T) {
	base, _, f := crossGateway(t)
	f.claudeBig.Set(fakellm.Faults{FailNext: 1000, FailStatus: 529})
	req := `{"model":"claude-sonnet","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Say hello."}]}`
	resp, body := post(t, base+"/v1/messages", req, "X-Api-Key", "sk-agent-anthropic-key", "Anthropic-Version", "2023-06-01")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	var msg struct {
		Type, Role string
		Content    []struct{ Type, Text string }
		StopReason string `json:"stop_reason"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Type != "message" || msg.Role != "assistant" ||
		len(msg.Content) == 0 || !strings.Contains(msg.Content[0].Text, "From the mini GPT.") || msg.StopReason != "end_turn" {
		t.Fatalf("not a message from GPT: %v %s", err, body)
	}
	last, _ := f.gptMini.Last()
	if last.Path != "/v1/chat/completions" || last.Header.Get("Authorization") != "Bearer sk-openai-mini" ||
		last.Header.Get("X-Api-Key") != "" || last.Header.Get("Anthropic-Version") != "" {
		t.Fatalf("the OpenAI model got %s with headers %v", last.Path, last.Header)
	}
}

// Streams cross too: the agent reads its own provider's events.
func TestStreamsAreTranslatedBothWays(t *testing.T) {
	base, _, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	f.claudeBig.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})

	resp, events := readStream(t, base+"/v1/chat/completions",
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`)
	all := strings.Join(events, "")
	if resp.Header.Get(HeaderModel) != "claude-haiku" || !strings.Contains(all, `"chat.completion.chunk"`) ||
		!strings.HasSuffix(strings.TrimSpace(all), "data: [DONE]") || strings.Contains(all, "message_start") ||
		!strings.Contains(all, `"finish_reason":"stop"`) || !strings.Contains(all, `"prompt_tokens"`) {
		t.Fatalf("chat stream from Claude: %v\n%s", resp.Header, all)
	}
	if text := chatStreamText(t, events); text != "From Claude." {
		t.Fatalf("streamed text %q", text)
	}

	resp, events = readStream(t, base+"/v1/messages",
		`{"model":"claude-sonnet","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}`)
	all = strings.Join(events, "")
	if resp.Header.Get(HeaderModel) != "gpt-4o-mini" || !strings.HasPrefix(all, "event: message_start") ||
		!strings.Contains(all, "event: message_stop") || strings.Contains(all, "[DONE]") ||
		!strings.Contains(all, `"stop_reason":"end_turn"`) {
		t.Fatalf("message stream from GPT: %v\n%s", resp.Header, all)
	}
}

// chatStreamText joins the content deltas of a chat completion stream.
func chatStreamText(t *testing.T, events []string) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range events {
		for _, line := range strings.Split(ev, "\n") {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var c struct {
				Choices []struct{ Delta struct{ Content string } }
			}
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			for _, ch := range c.Choices {
				b.WriteString(ch.Delta.Content)
			}
		}
	}
	return b.String()
}

// A request that cannot be translated faithfully skips the model of the
// other provider with the reason, and nothing reaches it.
func TestUntranslatableRequestSkipsTheOtherProvider(t *testing.T) {
	base, g, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	resp, body := post(t, base+"/v1/chat/completions", `{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "claude-haiku: the request cannot be translated for anthropic") {
		t.Fatalf("%s %s", resp.Status, body)
	}
	if n := f.claude.Stats().Calls; n != 0 {
		t.Fatalf("the Anthropic model got %d calls for an untranslatable request", n)
	}
	_ = g
}

// An error a lighter model cannot fix, from a model of the other provider,
// reaches the agent with its status and message, in the agent's shape.
func TestErrorsOfTheOtherProviderComeInTheAgentsShape(t *testing.T) {
	base, _, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	f.claude.Set(fakellm.Faults{FailNext: 1000, FailStatus: 400})
	resp, body := post(t, base+"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	var e struct {
		Error struct{ Message, Type string }
	}
	if resp.StatusCode != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
		t.Fatalf("%s %s", resp.Status, body)
	}
}

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"The weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`

// A tool call crosses both ways: Claude's tool_use reaches the OpenAI agent
// as tool_calls (id kept), and the agent's tool result reaches Claude as a
// tool_result of that id (the strict fake refuses one without its call).
func TestToolCallRoundTripAcrossProviders(t *testing.T) {
	base, _, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	ask := `{"model":"gpt-4o","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[` + weatherTool + `]}`
	resp, body := post(t, base+"/v1/chat/completions", ask)
	var cc struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					ID       string `json:"id"`
					Type     string `json:"type"`
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			}
			FinishReason string `json:"finish_reason"`
		}
	}
	if err := json.Unmarshal([]byte(body), &cc); err != nil || resp.StatusCode != 200 || len(cc.Choices) != 1 ||
		len(cc.Choices[0].Message.ToolCalls) != 1 || cc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("%s %v %s", resp.Status, err, body)
	}
	call := cc.Choices[0].Message.ToolCalls[0]
	var args map[string]any
	if call.ID == "" || call.Type != "function" || call.Function.Name != "get_weather" ||
		json.Unmarshal([]byte(call.Function.Arguments), &args) != nil || args["city"] == nil {
		t.Fatalf("tool call %+v", call)
	}

	callJSON, _ := json.Marshal(call)
	followUp := `{"model":"gpt-4o","tools":[` + weatherTool + `],"messages":[{"role":"user","content":"Weather in Paris?"},` +
		`{"role":"assistant","content":null,"tool_calls":[` + string(callJSON) + `]},` +
		`{"role":"tool","tool_call_id":"` + call.ID + `","content":"Sunny, 21 degrees"}]}`
	resp, body = post(t, base+"/v1/chat/completions", followUp)
	if resp.StatusCode != 200 || !strings.Contains(body, "tool said: Sunny, 21 degrees") {
		t.Fatalf("after the tool result: %s %s", resp.Status, body)
	}
	last, _ := f.claude.Last()
	if !strings.Contains(last.Body, `"tool_use_id":"`+call.ID+`"`) {
		t.Fatalf("Claude did not get the tool result for %s: %s", call.ID, last.Body)
	}
}

// A streamed tool call reaches the OpenAI agent as tool_calls deltas that
// accumulate to the call's id, name and JSON arguments.
func TestStreamedToolCallAcrossProviders(t *testing.T) {
	base, _, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	_, events := readStream(t, base+"/v1/chat/completions",
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[`+weatherTool+`]}`)
	var id, name, arguments, finish string
	for _, ev := range events {
		data, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int
						ID       string
						Function struct{ Name, Arguments string }
					} `json:"tool_calls"`
				}
				FinishReason string `json:"finish_reason"`
			}
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				id += tc.ID
				name += tc.Function.Name
				arguments += tc.Function.Arguments
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
	var args map[string]any
	if !strings.HasPrefix(id, "toolu_") || name != "get_weather" || json.Unmarshal([]byte(arguments), &args) != nil ||
		finish != "tool_calls" {
		t.Fatalf("accumulated id %q name %q arguments %q finish %q\n%s", id, name, arguments, finish, strings.Join(events, ""))
	}
}

// An agent of OpenAI's Responses API is served by Claude too.
func TestResponsesAgentServedByAnthropic(t *testing.T) {
	base, _, f := crossGateway(t)
	f.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})
	resp, body := post(t, base+"/v1/responses", `{"model":"gpt-4o","instructions":"Be brief.","input":"Say hello."}`)
	var r struct {
		Object, Status string
		Output         []struct {
			Type    string
			Content []struct{ Type, Text string }
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || resp.StatusCode != 200 || r.Object != "response" ||
		r.Status != "completed" || len(r.Output) == 0 || r.Output[0].Type != "message" ||
		r.Output[0].Content[0].Type != "output_text" || !strings.Contains(r.Output[0].Content[0].Text, "From Claude.") {
		t.Fatalf("%s %v %s", resp.Status, err, body)
	}
	resp, events := readStream(t, base+"/v1/responses", `{"model":"gpt-4o","stream":true,"input":"Say hello."}`)
	all := strings.Join(events, "")
	if resp.Header.Get(HeaderModel) != "claude-haiku" || !strings.Contains(all, "event: response.created") ||
		!strings.Contains(all, "event: response.output_text.delta") || !strings.Contains(all, "event: response.completed") {
		t.Fatalf("%v\n%s", resp.Header, all)
	}
}

// A request naming a model of the other provider directly is translated
// too: an OpenAI agent can ask for a Claude model by its label.
func TestAskingForTheOtherProvidersModelDirectly(t *testing.T) {
	base, _, _ := crossGateway(t)
	resp, body := post(t, base+"/v1/chat/completions", `{"model":"claude-haiku","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "claude-haiku" || resp.Header.Get(HeaderDegraded) != "false" ||
		!strings.Contains(body, `"chat.completion"`) {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
}
