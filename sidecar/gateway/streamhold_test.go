package gateway

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

const roleChunk = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"

const finishChunk = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"

// degrade_on = ["empty"] holds for streams: a stream that ends without
// text or a tool call falls back, though its first events came at once.
func TestEmptyStreamFallsBack(t *testing.T) {
	primary := newScriptedModel(t, sse([]string{roleChunk, chunk(" "), finishChunk}, 0, true))
	lite := newScriptedModel(t, sse([]string{roleChunk, chunk("from lite"), finishChunk}, 0, true))
	base, g := gw(t, degradingChainConfig(primary, lite))

	resp, events := readStream(t, base+"/v1/chat/completions", streamBody)
	all := strings.Join(events, "")
	if resp.Header.Get(HeaderModel) != "gpt-4o-mini" || !strings.Contains(all, "from lite") {
		t.Fatalf("%v %s", resp.Header, all)
	}
	if strings.Count(all, `"role":"assistant"`) != 1 {
		t.Fatalf("the agent got the empty stream's events too: %s", all)
	}
	if d := g.Degraded(); len(d) != 1 || !strings.Contains(d[0].Reason, "gpt-4o: empty answer") {
		t.Fatalf("degradation %+v", d)
	}
}

// A held stream is passed on from its first content, every event intact and
// in order; a tool call counts as content.
func TestHeldStreamIsPassedOnFromItsFirstContent(t *testing.T) {
	release := make(chan struct{})
	toolChunk := "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
	primary := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, roleChunk+toolChunk)
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, finishChunk+"data: [DONE]\n\n")
	})
	lite := newScriptedModel(t, status(500))
	base, _ := gw(t, degradingChainConfig(primary, lite))
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(streamBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var got strings.Builder
	for !strings.Contains(got.String(), "call_1") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the tool call was not passed on before the stream ended: %q %v", got.String(), err)
		}
		got.WriteString(line)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if want := roleChunk + toolChunk + finishChunk + "data: [DONE]\n\n"; got.String()+string(rest) != want {
		t.Fatalf("stream\n%q\nwant\n%q", got.String()+string(rest), want)
	}
}

// A streamed JSON-mode request with degrade_on = ["invalid_json"] is held
// whole and checked: text that is not JSON falls back; JSON is relayed.
func TestStreamedJSONModeIsCheckedWhole(t *testing.T) {
	primary := newScriptedModel(t, sse([]string{roleChunk, chunk("Sure! {\"a\":"), chunk("1}"), finishChunk}, 0, true))
	lite := newScriptedModel(t, sse([]string{roleChunk, chunk(`{"a":`), chunk(`2}`), finishChunk}, 0, true))
	base, _ := gw(t, degradingChainConfig(primary, lite))
	const jsonStream = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}`

	resp, events := readStream(t, base+"/v1/chat/completions", jsonStream)
	all := strings.Join(events, "")
	if resp.Header.Get(HeaderModel) != "gpt-4o-mini" || strings.Contains(all, "Sure!") || !strings.Contains(all, `2}`) {
		t.Fatalf("%s %s", resp.Header.Get(HeaderModel), all)
	}

	primary.set(sse([]string{roleChunk, chunk(`{"a":`), chunk(`1}`), finishChunk}, 0, true))
	resp, events = readStream(t, base+"/v1/chat/completions", jsonStream)
	if resp.Header.Get(HeaderModel) != "gpt-4o" || !strings.Contains(strings.Join(events, ""), `1}`) {
		t.Fatalf("%s %v", resp.Header.Get(HeaderModel), events)
	}
}

// A stream that breaks while it is held has sent the agent nothing, so it
// falls back like a model that failed before answering.
func TestStreamBrokenWhileHeldFallsBack(t *testing.T) {
	primary := newScriptedModel(t, sse([]string{roleChunk, roleChunk}, 0, false)) // ends without [DONE]
	lite := newScriptedModel(t, sse([]string{roleChunk, chunk("from lite"), finishChunk}, 0, true))
	base, g := gw(t, degradingChainConfig(primary, lite))
	resp, events := readStream(t, base+"/v1/chat/completions", streamBody)
	if resp.Header.Get(HeaderModel) != "gpt-4o-mini" || !strings.Contains(strings.Join(events, ""), "from lite") {
		t.Fatalf("%v %v", resp.Header, events)
	}
	if d := g.Degraded(); len(d) != 1 || !strings.Contains(d[0].Reason, "the stream ended before its last event") {
		t.Fatalf("degradation %+v", d)
	}
}
