package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// usageLog records what Options.OnUsage received.
type usageLog struct {
	mu  sync.Mutex
	got []Usage
}

func (l *usageLog) add(u Usage) { l.mu.Lock(); l.got = append(l.got, u); l.mu.Unlock() }

// all returns the usages reported so far. OnUsage runs once the answer has
// ended, which may be a moment after the agent read its last byte: all
// waits up to a second for want of them.
func (l *usageLog) all(want int) []Usage {
	var got []Usage
	testutil.Poll(time.Second, func() bool {
		l.mu.Lock()
		got = append([]Usage(nil), l.got...)
		l.mu.Unlock()
		return len(got) >= want
	})
	return got
}

// gwUsage is gw with the usage reported to a log.
func gwUsage(t *testing.T, cfg *policies.Config) (string, *Gateway, *usageLog) {
	t.Helper()
	log := &usageLog{}
	g := New(cfg, Options{Breakers: breaker.NewSet(), OnUsage: log.add})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL + "/llm", g, log
}

// answerJSON answers body as a whole JSON answer.
func answerJSON(body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// Answers of each endpoint, as the providers report usage (cached tokens
// included).
const (
	openAIUsageJSON   = `{"prompt_tokens":1200,"completion_tokens":85,"total_tokens":1285,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":40}}`
	responsesUsageOut = `{"input_tokens":900,"input_tokens_details":{"cached_tokens":512},"output_tokens":33,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":933}`
	anthropicUsageOut = `{"input_tokens":21,"cache_creation_input_tokens":188,"cache_read_input_tokens":2048,"output_tokens":1,"service_tier":"standard"}`
)

var (
	openAIUsage    = Usage{Input: 176, CachedInput: 1024, Output: 85}
	responsesUsage = Usage{Input: 388, CachedInput: 512, Output: 33}
	anthropicUsage = Usage{Input: 21, CachedInput: 2048, CacheWrite: 188, Output: 503}
)

func sseData(data string) string { return "data: " + data + "\n\n" }

func sseNamed(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

// Every endpoint, plain and streamed: OnUsage receives exactly the numbers
// the model reported, once.
func TestUsageOfEveryEndpointPlainAndStreamed(t *testing.T) {
	chatChunk := `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}`
	cmplChunk := `{"id":"c","object":"text_completion","choices":[{"text":"hi","index":0,"finish_reason":null}],"usage":null}`
	for _, tc := range []struct {
		name, path, provider, request string
		answer                        func(w http.ResponseWriter, r *http.Request)
		want                          Usage
	}{
		{"chat", "/v1/chat/completions", policies.ProviderOpenAI, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			answerJSON(`{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":` + openAIUsageJSON + `}`),
			openAIUsage},
		{"chat stream", "/v1/chat/completions", policies.ProviderOpenAI, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			sse([]string{sseData(chatChunk), sseData(`{"id":"c","object":"chat.completion.chunk","choices":[],"usage":` + openAIUsageJSON + `}`)}, 0, true),
			openAIUsage},
		{"completions", "/v1/completions", policies.ProviderOpenAI, `{"model":"m","prompt":"hi"}`,
			answerJSON(`{"object":"text_completion","choices":[{"text":"hi","index":0,"finish_reason":"stop"}],"usage":` + openAIUsageJSON + `}`),
			openAIUsage},
		{"completions stream", "/v1/completions", policies.ProviderOpenAI, `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`,
			sse([]string{sseData(cmplChunk), sseData(`{"id":"c","object":"text_completion","choices":[],"usage":` + openAIUsageJSON + `}`)}, 0, true),
			openAIUsage},
		{"responses", "/v1/responses", policies.ProviderOpenAI, `{"model":"m","input":"hi"}`,
			answerJSON(`{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":` + responsesUsageOut + `}`),
			responsesUsage},
		{"responses stream", "/v1/responses", policies.ProviderOpenAI, `{"model":"m","input":"hi","stream":true}`,
			sse([]string{
				sseNamed("response.created", `{"type":"response.created","response":{"id":"resp_1","status":"in_progress","usage":null}}`),
				sseNamed("response.output_text.delta", `{"type":"response.output_text.delta","delta":"hi"}`),
				sseNamed("response.completed", `{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":`+responsesUsageOut+`}}`),
			}, 0, false),
			responsesUsage},
		{"embeddings", "/v1/embeddings", policies.ProviderOpenAI, `{"model":"m","input":"hi"}`,
			answerJSON(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":12,"total_tokens":12}}`),
			Usage{Input: 12}},
		{"messages", "/v1/messages", policies.ProviderAnthropic, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			answerJSON(`{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":` +
				strings.Replace(anthropicUsageOut, `"output_tokens":1`, `"output_tokens":503`, 1) + `}`),
			anthropicUsage},
		{"messages stream", "/v1/messages", policies.ProviderAnthropic, `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			sse([]string{
				sseNamed("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":`+anthropicUsageOut+`}}`),
				sseNamed("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
				sseNamed("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`),
				sseNamed("content_block_stop", `{"type":"content_block_stop","index":0}`),
				sseNamed("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":250}}`),
				sseNamed("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":503}}`),
				sseNamed("message_stop", `{"type":"message_stop"}`),
			}, 0, false),
			anthropicUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := newScriptedModel(t, tc.answer)
			m := openaiModel("m", model.srv.URL)
			if tc.provider == policies.ProviderAnthropic {
				m.Provider, m.BaseURL = policies.ProviderAnthropic, model.srv.URL
			}
			base, g, log := gwUsage(t, &policies.Config{Breakers: map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)},
				Models: map[string]policies.Model{"m": m}, Gateway: policies.Gateway{MaxRequestBytes: 1 << 20}})

			resp, body := post(t, base+tc.path, tc.request)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s", resp.Status, body)
			}
			want := tc.want
			want.Model, want.ServedBy = "m", "m"
			got := log.all(1)
			if len(got) != 1 || got[0] != want {
				t.Fatalf("OnUsage got %+v, want once %+v", got, want)
			}
			ms := g.Models()[0]
			wantTotals := UsageTotals{Input: want.Input, Output: want.Output, CachedInput: want.CachedInput, CacheWrite: want.CacheWrite}
			if ms.Usage == nil || *ms.Usage != wantTotals {
				t.Errorf("Models() usage = %+v, want %+v", ms.Usage, wantTotals)
			}
		})
	}
}

// A degraded answer counts against the model that served it; the failed
// primary has no usage.
func TestUsageOfADegradedAnswerCountsAgainstTheFallback(t *testing.T) {
	primary := newScriptedModel(t, status(http.StatusInternalServerError))
	lite := newScriptedModel(t, answerJSON(`{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":`+openAIUsageJSON+`}`))
	base, g, log := gwUsage(t, chainConfig(primary, lite, time.Minute))

	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	want := openAIUsage
	want.Model, want.ServedBy = "gpt-4o", "gpt-4o-mini"
	if got := log.all(1); len(got) != 1 || got[0] != want {
		t.Fatalf("OnUsage got %+v, want once %+v", got, want)
	}
	for _, ms := range g.Models() {
		switch {
		case ms.Label == "gpt-4o" && ms.Usage != nil:
			t.Errorf("the failed primary shows usage %+v", *ms.Usage)
		case ms.Label == "gpt-4o-mini" && (ms.Usage == nil || ms.Usage.Input != 176 || ms.Usage.Output != 85):
			t.Errorf("the fallback shows usage %+v, want the answer's", ms.Usage)
		}
	}
}

// crossUsageConfig is gpt (OpenAI) → claude (Anthropic) and claude-agent
// (Anthropic) → gpt-lite (OpenAI).
func crossUsageConfig(gpt, claude, claudeAgent, gptLite *scriptedModel) *policies.Config {
	cfg := chainConfig(gpt, gptLite, time.Minute)
	p := cfg.Models["gpt-4o"]
	p.Fallback = "claude"
	cfg.Models["gpt-4o"] = p
	a := anthropicChain(claudeAgent, claude)
	c := a.Models["claude-small"]
	c.Label, c.Name = "claude", "claude"
	cfg.Models["claude"] = c
	b := a.Models["claude-big"]
	b.Fallback = "gpt-4o-mini"
	cfg.Models["claude-big"] = b
	return cfg
}

// A translated answer counts the usage the upstream model reported in its
// own format, plain and streamed, both ways.
func TestUsageOfATranslatedAnswerIsTheUpstreams(t *testing.T) {
	anthropicAnswer := answerJSON(`{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":` +
		strings.Replace(anthropicUsageOut, `"output_tokens":1`, `"output_tokens":503`, 1) + `}`)
	anthropicStream := sse([]string{
		sseNamed("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":`+anthropicUsageOut+`}}`),
		sseNamed("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		sseNamed("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`),
		sseNamed("content_block_stop", `{"type":"content_block_stop","index":0}`),
		sseNamed("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":503}}`),
		sseNamed("message_stop", `{"type":"message_stop"}`),
	}, 0, false)
	openAIAnswer := answerJSON(`{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":` + openAIUsageJSON + `}`)
	openAIStream := sse([]string{
		sseData(`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}],"usage":null}`),
		sseData(`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`),
		sseData(`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":` + openAIUsageJSON + `}`),
	}, 0, true)
	for _, tc := range []struct {
		name, path, request string
		claude, gptLite     func(w http.ResponseWriter, r *http.Request)
		servedBy            string
		want                Usage
	}{
		{"chat agent, anthropic model", "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			anthropicAnswer, nil, "claude", anthropicUsage},
		{"chat agent, anthropic stream", "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			anthropicStream, nil, "claude", anthropicUsage},
		{"messages agent, openai model", "/v1/messages", `{"model":"claude-big","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			nil, openAIAnswer, "gpt-4o-mini", openAIUsage},
		{"messages agent, openai stream", "/v1/messages", `{"model":"claude-big","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			nil, openAIStream, "gpt-4o-mini", openAIUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down := status(http.StatusServiceUnavailable)
			gpt, claudeAgent := newScriptedModel(t, down), newScriptedModel(t, down)
			claude, gptLite := newScriptedModel(t, down), newScriptedModel(t, down)
			if tc.claude != nil {
				claude.set(tc.claude)
			}
			if tc.gptLite != nil {
				gptLite.set(tc.gptLite)
			}
			base, _, log := gwUsage(t, crossUsageConfig(gpt, claude, claudeAgent, gptLite))
			resp, body := post(t, base+tc.path, tc.request)
			if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != tc.servedBy {
				t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
			}
			if strings.Contains(body, `"choices":[]`) {
				t.Errorf("an agent that did not ask for usage got a usage chunk: %s", body)
			}
			want := tc.want
			want.Model, want.ServedBy = gjson.Get(tc.request, "model").Str, tc.servedBy
			if got := log.all(1); len(got) != 1 || got[0] != want {
				t.Fatalf("OnUsage got %+v, want once %+v", got, want)
			}
		})
	}
}

// An answer the gateway finds unusable (degrade_on "empty") was billed all
// the same: it counts against the model that gave it, and the fallback's
// answer against the fallback.
func TestUsageOfAnUnusableAnswerStillCounts(t *testing.T) {
	answer := func(content string) func(w http.ResponseWriter, r *http.Request) {
		return answerJSON(`{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` + content +
			`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":50,"completion_tokens":` + map[string]string{"": "0", "ok": "7"}[content] + `}}`)
	}
	primary, lite := newScriptedModel(t, answer("")), newScriptedModel(t, answer("ok"))
	base, _, log := gwUsage(t, degradingChainConfig(primary, lite))
	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	want := []Usage{{Model: "gpt-4o", ServedBy: "gpt-4o", Input: 50}, {Model: "gpt-4o", ServedBy: "gpt-4o-mini", Input: 50, Output: 7}}
	got := log.all(2)
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("OnUsage got %+v, want %+v", got, want)
	}
}
