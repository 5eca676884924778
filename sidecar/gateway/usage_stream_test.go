package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// openAIStreamModel streams as OpenAI does: with include_usage, every
// chunk has "usage": null and a last chunk without choices carries the
// usage; without it, no usage at all.
func openAIStreamModel(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	include := gjson.GetBytes(b, "stream_options.include_usage").Type == gjson.True
	object, choice := "chat.completion.chunk", `{"index":0,"delta":{"content":"hi"},"finish_reason":null}`
	if strings.HasSuffix(r.URL.Path, "/completions") && !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		object, choice = "text_completion", `{"text":"hi","index":0,"finish_reason":null}`
	}
	tail := ""
	if include {
		tail = `,"usage":null`
	}
	events := []string{
		sseData(`{"id":"c","object":"` + object + `","choices":[` + choice + `]` + tail + `}`),
		sseData(`{"id":"c","object":"` + object + `","choices":[` + strings.Replace(choice, `"finish_reason":null`, `"finish_reason":"stop"`, 1) + `]` + tail + `}`),
	}
	if include {
		events = append(events, sseData(`{"id":"c","object":"`+object+`","choices":[],"usage":`+openAIUsageJSON+`}`))
	}
	sse(events, 0, true)(w, r)
}

// An OpenAI stream whose agent did not ask for usage is asked for it
// upstream, counted, and relayed without the extra chunk; an agent that
// asked gets it; a model that drops stream_options is not asked.
func TestOpenAIStreamUsageAskedForOnTheAgentsBehalf(t *testing.T) {
	for _, tc := range []struct {
		name, path, request string
		drop                []string
		upstream            string // stream_options the model receives ("" none)
		agentSeesUsage      bool
		counted             bool
	}{
		{"chat, not asked", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			nil, `{"include_usage":true}`, false, true},
		{"chat, asked", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			nil, `{"include_usage":true}`, true, true},
		{"chat, asked not", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}`,
			nil, `{"include_usage":true}`, false, true},
		{"chat, other stream_options kept", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},"messages":[{"role":"user","content":"hi"}]}`,
			nil, `{"include_obfuscation":false,"include_usage":true}`, false, true},
		{"chat, null stream_options", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user","content":"hi"}]}`,
			nil, `{"include_usage":true}`, false, true},
		{"chat, model drops stream_options", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{"stream_options"}, "", false, false},
		{"completions, not asked", "/v1/completions", `{"model":"m","stream":true,"prompt":"hi"}`,
			nil, `{"include_usage":true}`, false, true},
		{"completions, asked", "/v1/completions", `{"model":"m","stream":true,"prompt":"hi","stream_options":{"include_usage":true}}`,
			nil, `{"include_usage":true}`, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := newScriptedModel(t, openAIStreamModel)
			m := openaiModel("m", model.srv.URL)
			m.DropFields = tc.drop
			base, _, log := gwUsage(t, &policies.Config{Breakers: map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)},
				Models: map[string]policies.Model{"m": m}, Gateway: policies.Gateway{MaxRequestBytes: 1 << 20}})

			resp, events := readStream(t, base+tc.path, tc.request)
			if resp.StatusCode != http.StatusOK || len(events) == 0 || events[len(events)-1] != "data: [DONE]\n" {
				t.Fatalf("%s %q", resp.Status, events)
			}
			sent, _ := model.last()
			if got := gjson.Get(sent, "stream_options").Raw; got != tc.upstream {
				t.Errorf("the model received stream_options %q, want %q (request %s)", got, tc.upstream, sent)
			}
			seen := false
			for _, ev := range events {
				if strings.Contains(ev, `"choices":[]`) {
					seen = true
				}
			}
			if seen != tc.agentSeesUsage {
				t.Errorf("the agent saw the usage chunk: %v, want %v: %q", seen, tc.agentSeesUsage, events)
			}
			if want := 2 + 1; !tc.agentSeesUsage && len(events) != want {
				t.Errorf("the agent got %d events, want %d (two chunks, [DONE]): %q", len(events), want, events)
			}
			n := 0
			if tc.counted {
				n = 1
			}
			got := log.all(n)
			if !tc.counted {
				if len(got) != 0 {
					t.Errorf("OnUsage got %+v for a stream without usage", got)
				}
				return
			}
			want := openAIUsage
			want.Model, want.ServedBy = "m", "m"
			if len(got) != 1 || got[0] != want {
				t.Errorf("OnUsage got %+v, want once %+v", got, want)
			}
		})
	}
}

// A stream that breaks midway counts what it reported before it broke; one
// that reported nothing is not counted.
func TestUsageOfABrokenStream(t *testing.T) {
	start := sseNamed("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":`+anthropicUsageOut+`}}`)
	delta := sseNamed("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`)
	for _, tc := range []struct {
		name   string
		events []string
		want   []Usage
	}{
		{"usage reported", []string{start, delta}, []Usage{{Model: "claude-big", ServedBy: "claude-big", Input: 21, CachedInput: 2048, CacheWrite: 188, Output: 1}}},
		{"none reported", []string{delta, delta}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := newScriptedModel(t, sse(tc.events, 0, false))
			lite := newScriptedModel(t, status(http.StatusInternalServerError))
			base, _, log := gwUsage(t, anthropicChain(primary, lite))
			resp, events := readStream(t, base+"/v1/messages", `{"model":"claude-big","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != http.StatusOK || len(events) == 0 || !strings.Contains(events[len(events)-1], "event: error") {
				t.Fatalf("%s %q", resp.Status, events)
			}
			got := log.all(len(tc.want))
			if len(got) != len(tc.want) || len(got) == 1 && got[0] != tc.want[0] {
				t.Errorf("OnUsage got %+v, want %+v", got, tc.want)
			}
		})
	}
}
