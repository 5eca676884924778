package fakellm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

func TestFailNextCountsDown(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{FailNext: 2, FailStatus: http.StatusServiceUnavailable}})
	for i := range 2 {
		resp, body := post(t, url+"/v1/chat/completions", chatBody)
		var e openAIError
		decode(t, body, &e)
		if resp.StatusCode != http.StatusServiceUnavailable || e.Error == nil || e.Error.Type != "server_error" {
			t.Fatalf("call %d: %s %s", i, resp.Status, body)
		}
		if left := s.Faults().FailNext; left != 1-i {
			t.Fatalf("after call %d: %d failures left", i, left)
		}
	}
	resp, body := post(t, url+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("third call: %s %s", resp.Status, body)
	}
	if st := s.Stats(); st.Calls != 3 || st.Failed != 2 {
		t.Fatalf("%+v", st)
	}
}

func TestFailNextUnderConcurrentCallsFailsExactlyN(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{FailNext: 10}})
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[500] != 10 || statuses[200] != 30 {
		t.Fatalf("%v", statuses)
	}
	if st := s.Stats(); st.Calls != 40 || st.Failed != 10 {
		t.Fatalf("%+v", st)
	}
}

func TestInjectedStatusesInEachProvidersShape(t *testing.T) {
	s, url := start(t, fakellm.Options{Name: "gpt-4o"})
	for _, tc := range []struct {
		status                   int
		openAIType, openAICode   string
		anthropicType            string
		retryAfter, retryAfterMs string
	}{
		{429, "requests", "rate_limit_exceeded", "rate_limit_error", "2", "1500"},
		{500, "server_error", "", "api_error", "", ""},
		{503, "server_error", "", "api_error", "2", "1500"},
		{529, "server_error", "", "overloaded_error", "2", "1500"},
		{401, "invalid_request_error", "invalid_api_key", "authentication_error", "", ""},
	} {
		s.Set(fakellm.Faults{FailNext: 2, FailStatus: tc.status, RetryAfter: 1500 * time.Millisecond})
		resp, body := post(t, url+"/v1/chat/completions", chatBody)
		var oe openAIError
		decode(t, body, &oe)
		code := ""
		if oe.Error != nil && oe.Error.Code != nil {
			code = *oe.Error.Code
		}
		if resp.StatusCode != tc.status || oe.Error == nil || oe.Error.Type != tc.openAIType || code != tc.openAICode ||
			!strings.Contains(oe.Error.Message, "gpt-4o") || !strings.Contains(string(body), `"param":null`) ||
			resp.Header.Get("Retry-After") != tc.retryAfter || resp.Header.Get("retry-after-ms") != tc.retryAfterMs {
			t.Errorf("openai %d: %s %v %s", tc.status, resp.Status, resp.Header, body)
		}
		resp, body = post(t, url+"/v1/messages", messagesBody)
		var ae anthropicError
		decode(t, body, &ae)
		if resp.StatusCode != tc.status || ae.Type != "error" || ae.Error == nil || ae.Error.Type != tc.anthropicType {
			t.Errorf("anthropic %d: %s %s", tc.status, resp.Status, body)
		}
	}
}

func TestFailRateWithASeedFailsAboutThatShare(t *testing.T) {
	const calls, rate = 2000, 30
	run := func() []int {
		s := fakellm.New(fakellm.Options{Seed: 42, Faults: fakellm.Faults{FailRate: rate, FailStatus: 429}})
		out := make([]int, calls)
		for i := range out {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody)))
			out[i] = w.Code
		}
		if st := s.Stats(); st.Calls != calls {
			t.Fatalf("%+v", st.Calls)
		}
		return out
	}
	a, b := run(), run()
	failed := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("the same seed failed different calls (call %d: %d vs %d)", i, a[i], b[i])
		}
		switch a[i] {
		case 429:
			failed++
		case 200:
		default:
			t.Fatalf("call %d answered %d", i, a[i])
		}
	}
	if share := float64(failed) * 100 / calls; share < rate-4 || share > rate+4 {
		t.Fatalf("%.1f%% of the calls failed, want about %d%%", share, rate)
	}
}

func TestLatencyDelaysTheAnswer(t *testing.T) {
	_, url := start(t, fakellm.Options{Faults: fakellm.Faults{Latency: 60 * time.Millisecond}})
	t0 := time.Now()
	resp, _ := post(t, url+"/v1/chat/completions", chatBody)
	if d := time.Since(t0); resp.StatusCode != http.StatusOK || d < 60*time.Millisecond {
		t.Fatalf("%s after %v", resp.Status, d)
	}
}

// logLines collects a server's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// waitFor waits up to 2s for a log line containing all of parts.
func (l *logLines) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	var found string
	testutil.EventuallySeen(t, fmt.Sprintf("a log line with %q", parts), 2*time.Second, func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, line := range l.lines {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				found = line
				return true, ""
			}
		}
		return false, fmt.Sprintf("%q", l.lines)
	})
	return found
}

func TestStallSendsNothingUntilTheClientGivesUp(t *testing.T) {
	var logs logLines
	s, url := start(t, fakellm.Options{Logf: logs.logf, Faults: fakellm.Faults{Stall: 10 * time.Second}})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	t0 := time.Now()
	resp, err := client.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a stalled model answered: %s", resp.Status)
	}
	var timeout interface{ Timeout() bool }
	if !errors.As(err, &timeout) || !timeout.Timeout() || time.Since(t0) > 2*time.Second {
		t.Fatalf("want the client's timeout, got %v after %v", err, time.Since(t0))
	}
	// The server stops waiting as soon as the client went away
	logs.waitFor(t, "/v1/chat/completions", "stall 10s", "client gone")

	// A short stall delays the answer, which then comes
	s.Set(fakellm.Faults{Stall: 50 * time.Millisecond})
	t0 = time.Now()
	resp2, _ := post(t, url+"/v1/chat/completions", chatBody)
	if d := time.Since(t0); resp2.StatusCode != http.StatusOK || d < 50*time.Millisecond {
		t.Fatalf("%s after %v", resp2.Status, d)
	}
}

func TestStallHoldsBackTheHeaders(t *testing.T) {
	_, url := start(t, fakellm.Options{Faults: fakellm.Faults{Stall: 10 * time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(withStream(chatBody)))
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("headers arrived from a stalled stream: %s", resp.Status)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
}

func TestCutStreamsEndWithoutTheirLastEvent(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{CutAfter: 3}})
	for _, tc := range []struct{ path, body, terminal string }{
		{"/v1/chat/completions", withStream(chatBody), "[DONE]"},
		{"/v1/completions", `{"model":"m","prompt":"p","stream":true}`, "[DONE]"},
		{"/v1/responses", `{"model":"m","input":"p","stream":true}`, "response.completed"},
		{"/v1/messages", withStream(messagesBody), "message_stop"},
	} {
		_, events, err := stream(t, url+tc.path, tc.body)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: a cut stream must break the client's read; got %v", tc.path, err)
		}
		if len(events) != 3 {
			t.Errorf("%s: %d events before the cut, want 3", tc.path, len(events))
		}
		for _, e := range events {
			if e.Name == tc.terminal || e.Data == tc.terminal {
				t.Errorf("%s: the cut stream sent its terminal event", tc.path)
			}
		}
	}
	// CutAfter beyond the stream's length still keeps its last event back
	s.Set(fakellm.Faults{CutAfter: 1000})
	_, events, err := stream(t, url+"/v1/messages", withStream(messagesBody))
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(events) != 8 || events[7].Name != "message_delta" {
		t.Fatalf("%v %v", err, names(events))
	}
	if st := s.Stats(); st.Calls != 5 || st.Failed != 5 {
		t.Fatalf("cut answers count as failed: %+v", st)
	}
}

func TestCutPlainAnswerSendsHalfItsBody(t *testing.T) {
	_, url := start(t, fakellm.Options{Faults: fakellm.Faults{CutAfter: 1}})
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s: want a broken body, got %v", resp.Status, err)
	}
	if n := int64(len(body)); n == 0 || n*2 > resp.ContentLength || json.Valid(body) {
		t.Fatalf("got %d of %d bytes: %s", n, resp.ContentLength, body)
	}
}

func TestResetClosesTheConnectionWithoutAnAnswer(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{Reset: true, FailNext: 1}})
	for _, path := range []string{"/v1/chat/completions", "/v1/messages"} {
		resp, err := http.Post(url+path, "application/json", strings.NewReader(chatBody))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: a reset call answered %s", path, resp.Status)
		}
	}
	if f := s.Faults(); f.FailNext != 1 {
		t.Fatalf("a reset call consumed fail_next: %+v", f)
	}
	s.Heal()
	if resp, _ := post(t, url+"/v1/chat/completions", chatBody); resp.StatusCode != http.StatusOK {
		t.Fatalf("after healing: %s", resp.Status)
	}
	if st := s.Stats(); st.Calls != 3 || st.Failed != 2 {
		t.Fatalf("%+v", st)
	}
}

func TestEmptyAnswers(t *testing.T) {
	_, url := start(t, fakellm.Options{Faults: fakellm.Faults{Empty: true}})
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", chatBody},
		{"/v1/completions", `{"model":"m","prompt":"p"}`},
		{"/v1/responses", `{"model":"m","input":"p"}`},
		{"/v1/messages", messagesBody},
	} {
		resp, body := post(t, url+tc.path, tc.body)
		if resp.StatusCode != http.StatusOK || answerText(t, tc.path, body) != "" {
			t.Errorf("%s: %s %s", tc.path, resp.Status, body)
		}
	}
	_, body := post(t, url+"/v1/messages", messagesBody)
	if !strings.Contains(string(body), `"content":[]`) {
		t.Fatalf("an empty Anthropic answer has no content blocks: %s", body)
	}
	_, events, err := stream(t, url+"/v1/chat/completions", withStream(chatBody))
	if err != nil || len(events) != 3 || events[2].Data != "[DONE]" {
		t.Fatalf("empty chat stream: role, finish, [DONE]; got %v %+v", err, events)
	}
	_, events, err = stream(t, url+"/v1/messages", withStream(messagesBody))
	if err != nil || strings.Join(names(events), " ") != "message_start ping message_delta message_stop" {
		t.Fatalf("empty message stream: %v %v", err, names(events))
	}
}

func TestInvalidJSONOnlyWhenJSONIsAskedFor(t *testing.T) {
	_, url := start(t, fakellm.Options{Faults: fakellm.Faults{InvalidJSON: true}})
	_, body := post(t, url+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"Answer in JSON."}],"response_format":{"type":"json_object"}}`)
	if text := answerText(t, "/v1/chat/completions", body); text == "" || json.Valid([]byte(text)) {
		t.Fatalf("%q", text)
	}
	_, body = post(t, url+"/v1/responses", `{"model":"m","input":"p","text":{"format":{"type":"json_object"}}}`)
	if text := answerText(t, "/v1/responses", body); text == "" || json.Valid([]byte(text)) {
		t.Fatalf("%q", text)
	}
	_, body = post(t, url+"/v1/chat/completions", chatBody)
	if text := answerText(t, "/v1/chat/completions", body); text != fakellm.DefaultReply {
		t.Fatalf("%q", text)
	}
}

func TestNestedAnswersArraysThatDeep(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	post(t, url+"/_control", `{"nested":5}`)
	for _, body := range []string{chatBody, withStream(chatBody)} {
		resp, got := post(t, url+"/v1/chat/completions", body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" ||
			string(got) != "[[[[[]]]]]" {
			t.Fatalf("%s %q: %q", resp.Status, resp.Header.Get("Content-Type"), got)
		}
	}
	if st := s.Stats(); st.Calls != 2 || st.Failed != 0 {
		t.Fatalf("%+v", st)
	}
	s.Heal()
	if _, body := post(t, url+"/v1/chat/completions", chatBody); answerText(t, "/v1/chat/completions", body) != fakellm.DefaultReply {
		t.Fatalf("healed: %s", body)
	}
}

func TestEventDelaySlowsTheStream(t *testing.T) {
	_, url := start(t, fakellm.Options{Faults: fakellm.Faults{EventDelay: 20 * time.Millisecond}})
	t0 := time.Now()
	_, events, err := stream(t, url+"/v1/chat/completions", withStream(chatBody))
	if d := time.Since(t0); err != nil || d < time.Duration(len(events)-1)*20*time.Millisecond {
		t.Fatalf("%d events in %v (%v)", len(events), d, err)
	}
}

func TestCutAndResetOverHTTP2(t *testing.T) {
	s := fakellm.New(fakellm.Options{Faults: fakellm.Faults{CutAfter: 2}})
	ts := httptest.NewUnstartedServer(s)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()

	resp, err := client.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(withStream(chatBody)))
	if err != nil {
		t.Fatal(err)
	}
	events, err := readSSE(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || err == nil || len(events) != 2 {
		t.Fatalf("%s: %d events, read error %v", resp.Proto, len(events), err)
	}

	s.Set(fakellm.Faults{Reset: true})
	if resp, err := client.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody)); err == nil {
		resp.Body.Close()
		t.Fatalf("a reset call answered %s", resp.Status)
	}
}
