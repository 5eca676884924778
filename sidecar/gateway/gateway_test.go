package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// scriptedModel is a model server whose every answer is written by the
// test, and which records what it received.
type scriptedModel struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []string
	hdrs   []http.Header
	answer atomic.Pointer[func(w http.ResponseWriter, r *http.Request)]
	gone   chan struct{} // closed when a request's context ends early
}

func newScriptedModel(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *scriptedModel {
	m := &scriptedModel{gone: make(chan struct{}, 16)}
	m.set(answer)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.bodies = append(m.bodies, string(b))
		m.hdrs = append(m.hdrs, r.Header.Clone())
		m.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		(*m.answer.Load())(w, r)
		if r.Context().Err() != nil {
			m.gone <- struct{}{}
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *scriptedModel) set(fn func(w http.ResponseWriter, r *http.Request)) { m.answer.Store(&fn) }

func (m *scriptedModel) last() (string, http.Header) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bodies) == 0 {
		return "", nil
	}
	return m.bodies[len(m.bodies)-1], m.hdrs[len(m.hdrs)-1]
}

// chatOK answers a chat completion naming the model it was asked for.
func chatOK(content string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}]}`,
			modelOf(r), content)
	}
}

func modelOf(r *http.Request) string {
	var v struct{ Model string }
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &v)
	return v.Model
}

func status(code int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"error":{"message":"scripted","type":"scripted"}}`)
	}
}

// sse writes events, flushing each, with a pause before each one; it ends
// with [DONE] when done is set.
func sse(events []string, pause time.Duration, done bool) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for _, e := range events {
			select {
			case <-time.After(pause):
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
		if done {
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
		}
	}
}

func chunk(s string) string {
	return fmt.Sprintf("data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", s)
}

// gw runs a gateway over cfg behind an HTTP server and returns its /llm
// base URL.
func gw(t *testing.T, cfg *policies.Config) (string, *Gateway) {
	t.Helper()
	return gwWith(t, cfg, breaker.NewSet())
}

// gwOnClock is gw with breakers on a test clock, which moves only when the
// test moves it.
func gwOnClock(t *testing.T, cfg *policies.Config) (string, *Gateway, *testutil.Clock) {
	t.Helper()
	clock := testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	base, g := gwWith(t, cfg, breaker.NewSetWithClock(clock.Now))
	return base, g, clock
}

func gwWith(t *testing.T, cfg *policies.Config, breakers *breaker.Set) (string, *Gateway) {
	t.Helper()
	g := New(cfg, Options{Breakers: breakers})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL + "/llm", g
}

func openaiModel(label, url string) policies.Model {
	return policies.Model{Label: label, Name: label, Provider: policies.ProviderOpenAI, BaseURL: url + "/v1",
		Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: 2 * time.Second, StreamIdleTimeout: 2 * time.Second}
}

// chainConfig is gpt-4o (primary) → gpt-4o-mini (lite, capped, tools
// dropped), both with keys.
func chainConfig(primary, lite *scriptedModel, openFor time.Duration) *policies.Config {
	p := openaiModel("gpt-4o", primary.srv.URL)
	p.Name, p.APIKey, p.Fallback = "gpt-4o-2024-08-06", "sk-primary-secret", "gpt-4o-mini"
	l := openaiModel("gpt-4o-mini", lite.srv.URL)
	l.APIKey, l.MaxTokens, l.DropFields = "sk-lite-secret", 1024, []string{"tools"}
	return &policies.Config{
		Breakers: map[string]policies.Breaker{"default": sidecartest.Breaker(openFor)},
		Models:   map[string]policies.Model{"gpt-4o": p, "gpt-4o-mini": l},
		Gateway:  policies.Gateway{MaxRequestBytes: 1 << 20},
	}
}

// degradingChainConfig is chainConfig with open_for a minute and
// degrade_on = ["empty", "invalid_json"] on the primary.
func degradingChainConfig(primary, lite *scriptedModel) *policies.Config {
	cfg := chainConfig(primary, lite, time.Minute)
	m := cfg.Models["gpt-4o"]
	m.DegradeOn = []string{policies.DegradeEmpty, policies.DegradeInvalidJSON}
	cfg.Models["gpt-4o"] = m
	return cfg
}

const chatBody = `{"model": "gpt-4o", "messages":[{"role":"user","content":"hi"}], "tools":[{"type":"function"}], "max_tokens": 4000}`

func post(t *testing.T, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp, string(b)
}

func TestPrimaryAnswersWithItsOwnKeyAndUntouchedBody(t *testing.T) {
	primary := newScriptedModel(t, chatOK("from primary"))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, _ := gw(t, chainConfig(primary, lite, time.Minute))

	resp, body := post(t, base+"/v1/chat/completions", chatBody, "Authorization", "Bearer agent-own-key", "X-Trace", "t-1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "from primary") {
		t.Fatalf("%s %s", resp.Status, body)
	}
	for h, want := range map[string]string{HeaderModel: "gpt-4o", HeaderDegraded: "false", HeaderAttempts: "1"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if ms, err := strconv.ParseFloat(resp.Header.Get(HeaderOverhead), 64); err != nil || ms < 0 || ms > 1000 {
		t.Errorf("%s = %q", HeaderOverhead, resp.Header.Get(HeaderOverhead))
	}
	got, hdr := primary.last()
	want := strings.Replace(chatBody, `"gpt-4o"`, `"gpt-4o-2024-08-06"`, 1)
	if got != want {
		t.Errorf("the primary received\n%s\nwant (only the model name changed)\n%s", got, want)
	}
	if a := hdr.Get("Authorization"); a != "Bearer sk-primary-secret" {
		t.Errorf("the primary got Authorization %q, want the model's key", a)
	}
	if hdr.Get("X-Trace") != "t-1" {
		t.Errorf("the agent's other headers were not forwarded: %v", hdr)
	}
	if lite.calls.Load() != 0 {
		t.Errorf("the lite model was called although the primary answered")
	}
}

func TestFailingPrimaryDegradesToLiteThenItsBreakerOpens(t *testing.T) {
	primary := newScriptedModel(t, status(http.StatusInternalServerError))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, g, clock := gwOnClock(t, chainConfig(primary, lite, 400*time.Millisecond))

	// When 6 requests are sent while the primary fails
	for i := 0; i < 6; i++ {
		resp, body := post(t, base+"/v1/chat/completions", chatBody)
		// Then each is answered by the lite model, marked degraded
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"model":"gpt-4o-mini"`) {
			t.Fatalf("request %d: %s %s", i+1, resp.Status, body)
		}
		if resp.Header.Get(HeaderDegraded) != "true" || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
			t.Fatalf("request %d: headers %v", i+1, resp.Header)
		}
		wantAttempts := "2"
		if i >= 3 {
			wantAttempts = "1" // the primary is skipped without a call
		}
		if got := resp.Header.Get(HeaderAttempts); got != wantAttempts {
			t.Errorf("request %d: %s attempts, want %s", i+1, got, wantAttempts)
		}
	}
	// And the primary received exactly 3 calls: then its breaker opened
	if n := primary.calls.Load(); n != 3 {
		t.Fatalf("the failing primary got %d calls, want 3", n)
	}
	// And the lite model got the request with its overrides
	got, hdr := lite.last()
	want := `{"model": "gpt-4o-mini", "messages":[{"role":"user","content":"hi"}], "max_tokens": 1024}`
	if got != want {
		t.Errorf("the lite model received\n%s\nwant\n%s", got, want)
	}
	if hdr.Get("Authorization") != "Bearer sk-lite-secret" {
		t.Errorf("the lite model got Authorization %q", hdr.Get("Authorization"))
	}
	if d := g.Degraded(); len(d) != 1 || d[0].Model != "gpt-4o" || d[0].ServedBy != "gpt-4o-mini" || !strings.Contains(d[0].Reason, "breaker open") {
		t.Errorf("degraded %+v", d)
	}
	ms := g.Models()
	if ms[0].Label != "gpt-4o" || ms[0].Calls != 3 || ms[0].Failures != 3 || ms[0].Skipped != 3 || ms[1].FallbackAnswers != 6 {
		t.Errorf("model stats %+v", ms)
	}

	// When the primary heals and open_for passes, one probe reaches it
	primary.set(chatOK("from primary"))
	clock.Advance(400 * time.Millisecond)
	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.Header.Get(HeaderDegraded) != "false" || !strings.Contains(body, "from primary") {
		t.Fatalf("after healing: %v %s", resp.Header, body)
	}
	if n := primary.calls.Load(); n != 4 {
		t.Fatalf("the primary got %d calls, want 4 (one probe)", n)
	}
	if d := g.Degraded(); len(d) != 0 {
		t.Errorf("still degraded after a primary answer: %+v", d)
	}
}

func TestFailuresThatFallBackAndErrorsThatDoNot(t *testing.T) {
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()
	for _, tc := range []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request)
		url      string
		fallback bool
		status   int
	}{
		{"500", status(500), "", true, 200},
		{"503", status(503), "", true, 200},
		{"429", status(429), "", true, 200},
		{"connection refused", nil, refusedURL, true, 200},
		{"400 is the agent's", status(400), "", false, 400},
		{"401 is the agent's", status(401), "", false, 401},
		{"403 is the agent's", status(403), "", false, 403},
		{"404 is the agent's", status(404), "", false, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := tc.answer
			if answer == nil {
				answer = chatOK("unused")
			}
			primary := newScriptedModel(t, answer)
			lite := newScriptedModel(t, chatOK("from lite"))
			cfg := chainConfig(primary, lite, time.Minute)
			if tc.url != "" {
				m := cfg.Models["gpt-4o"]
				m.BaseURL = tc.url + "/v1"
				cfg.Models["gpt-4o"] = m
			}
			base, _ := gw(t, cfg)
			resp, body := post(t, base+"/v1/chat/completions", chatBody)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if got := lite.calls.Load() == 1; got != tc.fallback {
				t.Fatalf("fell back: %v, want %v", got, tc.fallback)
			}
			if !tc.fallback && !strings.Contains(body, "scripted") {
				t.Fatalf("the model's own error was not passed back as is: %s", body)
			}
		})
	}
}

func TestNothingLeftAnswers503InTheProvidersShape(t *testing.T) {
	primary := newScriptedModel(t, status(503))
	lite := newScriptedModel(t, status(502))
	base, _ := gw(t, chainConfig(primary, lite, 2*time.Second))
	for i := 0; i < 3; i++ {
		post(t, base+"/v1/chat/completions", chatBody)
	}
	// Both breakers are open now: nothing is called, the answer says why
	before := primary.calls.Load() + lite.calls.Load()
	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("%s Retry-After %q: %s", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	var e struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type != "server_error" || e.Error.Code != "models_unavailable" ||
		!strings.Contains(e.Error.Message, "gpt-4o: breaker open") || !strings.Contains(e.Error.Message, "gpt-4o-mini: breaker open") {
		t.Fatalf("error body %s", body)
	}
	if after := primary.calls.Load() + lite.calls.Load(); after != before {
		t.Fatalf("%d calls reached open models", after-before)
	}
}

func anthropicChain(primary, lite *scriptedModel) *policies.Config {
	p := policies.Model{Label: "claude-big", Name: "claude-big", Provider: policies.ProviderAnthropic, BaseURL: primary.srv.URL,
		APIKey: "sk-ant-secret", Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: time.Second,
		StreamIdleTimeout: time.Second, Fallback: "claude-small"}
	l := p
	l.Label, l.Name, l.BaseURL, l.Fallback = "claude-small", "claude-small", lite.srv.URL, ""
	return &policies.Config{Breakers: map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)},
		Models: map[string]policies.Model{"claude-big": p, "claude-small": l}, Gateway: policies.Gateway{MaxRequestBytes: 1 << 20}}
}

func TestAnthropicCredentialsVersionAndErrorShape(t *testing.T) {
	primary := newScriptedModel(t, status(529))
	lite := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"type":"message","model":"claude-small","content":[{"type":"text","text":"hi"}]}`)
	})
	base, _ := gw(t, anthropicChain(primary, lite))
	body := `{"model":"claude-big","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	resp, out := post(t, base+"/v1/messages", body, "X-Api-Key", "agent-own-key")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderDegraded) != "true" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, out)
	}
	_, hdr := lite.last()
	if hdr.Get("X-Api-Key") != "sk-ant-secret" || hdr.Get("Anthropic-Version") != "2023-06-01" || hdr.Get("Authorization") != "" {
		t.Fatalf("the model got x-api-key %q, anthropic-version %q, authorization %q",
			hdr.Get("X-Api-Key"), hdr.Get("Anthropic-Version"), hdr.Get("Authorization"))
	}

	// The whole chain failing: Anthropic's error shape
	lite.set(status(500))
	resp, out = post(t, base+"/v1/messages", body)
	var e struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil || resp.StatusCode != 503 || e.Type != "error" ||
		e.Error.Type != "overloaded_error" || !strings.Contains(e.Error.Message, "claude-big: 529") {
		t.Fatalf("%s %s", resp.Status, out)
	}
	if strings.Contains(out, "sk-ant-secret") || strings.Contains(out, "agent-own-key") {
		t.Fatalf("a key appears in an error: %s", out)
	}
}

func TestBadRequestsGetClearErrorsAndCallNothing(t *testing.T) {
	primary := newScriptedModel(t, chatOK("x"))
	lite := newScriptedModel(t, chatOK("x"))
	cfg := chainConfig(primary, lite, time.Minute)
	cfg.Gateway.MaxRequestBytes = 2048
	base, _ := gw(t, cfg)
	big := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 3000) + `"}]}`
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v1/chat/completions", `{"model":"gpt-4o",`, 400, "not valid JSON"},
		{"/v1/chat/completions", `{"messages":[]}`, 400, `no \"model\"`},
		{"/v1/chat/completions", `{"model":"gpt-5"}`, 404, `configured models: gpt-4o, gpt-4o-mini`},
		// A token count has no OpenAI equivalent (a message is translated).
		{"/v1/messages/count_tokens", `{"model":"gpt-4o","messages":[]}`, 400, "speaks the openai API"},
		{"/v1/chat/completions", big, 413, "max_request_bytes"},
		{"/v1/nope", `{}`, 404, "no endpoint"},
	} {
		resp, body := post(t, base+tc.path, tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %.40s: %d %s, want %d containing %s", tc.path, tc.body, resp.StatusCode, body, tc.status, tc.want)
		}
		if strings.HasPrefix(tc.path, "/v1/messages") && !strings.HasPrefix(body, `{"error"`) && !strings.Contains(body, `"type":"error"`) {
			t.Errorf("not in Anthropic's shape: %s", body)
		}
	}
	if n := primary.calls.Load() + lite.calls.Load(); n != 0 {
		t.Fatalf("bad requests reached models %d times", n)
	}
}

func TestModelsList(t *testing.T) {
	primary := newScriptedModel(t, chatOK("x"))
	base, _ := gw(t, chainConfig(primary, primary, time.Minute))
	resp, err := http.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || list.Object != "list" || len(list.Data) != 2 ||
		list.Data[0].ID != "gpt-4o" || list.Data[1].ID != "gpt-4o-mini" || list.Data[0].Object != "model" {
		t.Fatalf("%+v %v", list, err)
	}
}

func TestDegradeOnEmptyAndInvalidJSON(t *testing.T) {
	primary := newScriptedModel(t, chatOK(""))
	lite := newScriptedModel(t, chatOK(`{"answer":42}`))
	cfg := degradingChainConfig(primary, lite)
	base, _ := gw(t, cfg)

	// An empty completion counts as a failure of the primary
	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.Header.Get(HeaderDegraded) != "true" || !strings.Contains(body, "answer") {
		t.Fatalf("empty answer: %v %s", resp.Header, body)
	}
	// Text that is not JSON, when JSON was asked for, too
	primary.set(chatOK("Sure! Here it is: answer=42"))
	jsonReq := `{"model":"gpt-4o","messages":[],"response_format":{"type":"json_object"}}`
	resp, _ = post(t, base+"/v1/chat/completions", jsonReq)
	if resp.Header.Get(HeaderDegraded) != "true" {
		t.Fatalf("invalid JSON answer was not degraded: %v", resp.Header)
	}
	// The same text is a fine answer when JSON was not asked for
	resp, body = post(t, base+"/v1/chat/completions", chatBody)
	if resp.Header.Get(HeaderDegraded) != "false" || !strings.Contains(body, "answer=42") {
		t.Fatalf("plain text answer: %v %s", resp.Header, body)
	}
}

// readStream reads a streamed answer: its events and whether it ended with
// an error event.
func readStream(t *testing.T, url, body string) (*http.Response, []string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []string
	var cur strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "" {
			events = append(events, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	return resp, events
}

const streamBody = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`

func TestStreamsRelayEventByEvent(t *testing.T) {
	release := make(chan struct{})
	primary := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, chunk("one"))
		w.(http.Flusher).Flush()
		<-release // the rest waits until the agent has seen the first event
		_, _ = io.WriteString(w, chunk("two")+"data: [DONE]\n\n")
	})
	base, _ := gw(t, chainConfig(primary, primary, time.Minute))
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(streamBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, `"one"`) {
		t.Fatalf("first event not flushed before the stream ended: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.HasSuffix(string(rest), "data: [DONE]\n\n") || !strings.Contains(string(rest), `"two"`) {
		t.Fatalf("rest of the stream %q", rest)
	}
	if resp.Header.Get(HeaderModel) != "gpt-4o" || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("headers %v", resp.Header)
	}
}

func TestStreamThatStallsBeforeItsFirstEventFallsBack(t *testing.T) {
	primary := newScriptedModel(t, sse([]string{chunk("late")}, 5*time.Second, true))
	lite := newScriptedModel(t, sse([]string{chunk("lite")}, 0, true))
	cfg := chainConfig(primary, lite, time.Minute)
	m := cfg.Models["gpt-4o"]
	m.FirstByteTimeout = 200 * time.Millisecond
	cfg.Models["gpt-4o"] = m
	base, g := gw(t, cfg)
	resp, events := readStream(t, base+"/v1/chat/completions", streamBody)
	if resp.Header.Get(HeaderDegraded) != "true" || len(events) != 2 || !strings.Contains(events[0], "lite") || events[1] != "data: [DONE]\n" {
		t.Fatalf("%v %q", resp.Header, events)
	}
	if f := g.Models()[0].LastFailure; !strings.Contains(f, "no first event within 200ms") {
		t.Fatalf("primary's last failure %q", f)
	}
}

func TestStreamStartingWithAnErrorEventFallsBack(t *testing.T) {
	primary := newScriptedModel(t, sse([]string{"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"}, 0, false))
	lite := newScriptedModel(t, sse([]string{chunk("lite")}, 0, true))
	base, _ := gw(t, chainConfig(primary, lite, time.Minute))
	resp, events := readStream(t, base+"/v1/chat/completions", streamBody)
	if resp.Header.Get(HeaderDegraded) != "true" || len(events) != 2 || !strings.Contains(events[0], "lite") {
		t.Fatalf("%v %q", resp.Header, events)
	}
}

func TestStreamCutMidwayEndsWithAnErrorEvent(t *testing.T) {
	primary := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, chunk("one")+chunk("two"))
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		_ = conn.Close() // the connection breaks: no [DONE]
	})
	lite := newScriptedModel(t, sse([]string{chunk("lite")}, 0, true))
	base, g := gw(t, chainConfig(primary, lite, time.Minute))
	_, events := readStream(t, base+"/v1/chat/completions", streamBody)
	if len(events) != 3 || !strings.Contains(events[1], "two") {
		t.Fatalf("events %q", events)
	}
	last := events[2]
	if !strings.HasPrefix(last, "event: error\ndata: ") || !strings.Contains(last, `"code":"stream_interrupted"`) ||
		!strings.Contains(last, "the answer is incomplete") {
		t.Fatalf("last event %q", last)
	}
	if lite.calls.Load() != 0 {
		t.Fatalf("a started stream fell back")
	}
	if ms := g.Models(); ms[0].Failures != 1 {
		t.Fatalf("a cut stream did not count as a failure: %+v", ms[0])
	}
}

func TestSilentStreamEndsAfterIdleTimeout(t *testing.T) {
	primary := newScriptedModel(t, sse([]string{chunk("one"), chunk("too late")}, 0, true))
	primary.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, chunk("one"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the gateway gives up
	})
	cfg := chainConfig(primary, primary, time.Minute)
	m := cfg.Models["gpt-4o"]
	m.StreamIdleTimeout = 300 * time.Millisecond
	cfg.Models["gpt-4o"] = m
	base, _ := gw(t, cfg)
	start := time.Now()
	_, events := readStream(t, base+"/v1/chat/completions", streamBody)
	if len(events) != 2 || !strings.Contains(events[1], "silent for longer than 300ms") {
		t.Fatalf("events %q", events)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the idle stream took %s to end", took)
	}
	select {
	case <-primary.gone:
	case <-time.After(2 * time.Second):
		t.Fatal("the model call was not cancelled")
	}
}

func TestAgentThatDisconnectsCancelsTheModelCall(t *testing.T) {
	primary := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	lite := newScriptedModel(t, chatOK("lite"))
	base, g := gw(t, chainConfig(primary, lite, time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(chatBody))
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request did not time out")
	}
	select {
	case <-primary.gone:
	case <-time.After(2 * time.Second):
		t.Fatal("the model call went on after the agent left")
	}
	label := g.Models()[0].Label
	testutil.Eventually(t, "the cancelled call counted as cancelled", 2*time.Second, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		st := g.stats[label]
		return st != nil && st.canceled == 1
	})
	if ms := g.Models(); ms[0].Failures != 0 || lite.calls.Load() != 0 {
		t.Fatalf("a cancelled call counted as a failure or fell back: %+v", ms[0])
	}
}

func TestAnthropicStreamCutEndsWithAnthropicErrorEvent(t *testing.T) {
	primary := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\"}\n\n")
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		_ = conn.Close()
	})
	base, _ := gw(t, anthropicChain(primary, primary))
	_, events := readStream(t, base+"/v1/messages", `{"model":"claude-big","max_tokens":10,"stream":true,"messages":[]}`)
	if len(events) != 2 || !strings.HasPrefix(events[1], "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"") {
		t.Fatalf("events %q", events)
	}
}

func TestKeysNeverAppearInLogsOrErrors(t *testing.T) {
	primary := newScriptedModel(t, status(500))
	lite := newScriptedModel(t, status(401))
	cfg := chainConfig(primary, lite, time.Minute)
	var logs strings.Builder
	var mu sync.Mutex
	g := New(cfg, Options{Breakers: breaker.NewSet(), Log: hclog.New(&hclog.LoggerOptions{
		Output: writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }), Level: hclog.Trace})})
	srv := httptest.NewServer(g)
	defer srv.Close()
	var bodies []string
	for i := 0; i < 5; i++ {
		_, body := post(t, srv.URL+"/llm/v1/chat/completions", chatBody, "Authorization", "Bearer agent-secret-key", "X-Api-Key", "agent-secret-key")
		bodies = append(bodies, body)
	}
	lite.set(status(503))
	_, body := post(t, srv.URL+"/llm/v1/chat/completions", chatBody, "Authorization", "Bearer agent-secret-key")
	bodies = append(bodies, body)
	mu.Lock()
	out := logs.String() + strings.Join(bodies, "\n")
	mu.Unlock()
	if !strings.Contains(out, "no model could answer") {
		t.Fatalf("expected the chain failure in the logs or answers:\n%s", out)
	}
	for _, secret := range []string{"sk-primary-secret", "sk-lite-secret", "agent-secret-key"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%s appears in logs or answers:\n%s", secret, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestModelByIDAndAnthropicTokenCount(t *testing.T) {
	primary := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"input_tokens":12}`)
	})
	cfg := anthropicChain(primary, primary)
	m := cfg.Models["claude-big"]
	m.DegradeOn = []string{policies.DegradeEmpty}
	cfg.Models["claude-big"] = m
	base, _ := gw(t, cfg)

	resp, body := post(t, base+"/v1/messages/count_tokens", `{"model":"claude-big","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || body != `{"input_tokens":12}` || resp.Header.Get(HeaderModel) != "claude-big" {
		t.Fatalf("count_tokens: %s %s %v", resp.Status, body, resp.Header)
	}
	for id, want := range map[string]int{"claude-small": 200, "nope": 404} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/models/"+id, nil)
		req.Header.Set("Anthropic-Version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET /v1/models/%s: %d %s", id, resp.StatusCode, b)
		}
		if want == 200 && !strings.Contains(string(b), `"type":"model","id":"claude-small"`) {
			t.Fatalf("model item %s", b)
		}
		if want == 404 && !strings.Contains(string(b), `"not_found_error"`) {
			t.Fatalf("unknown model %s", b)
		}
	}
}
