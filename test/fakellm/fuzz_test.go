package fakellm_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// fuzzPaths are the POST endpoints a fuzzed body is sent to.
var fuzzPaths = []string{"/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses",
	"/v1/completions", "/v1/embeddings"}

// FuzzRequests sends arbitrary bodies to each endpoint: the server never
// panics, answers 200 or 400, and what it answers is JSON (each event's
// data, for a stream) with an error message when it refuses.
func FuzzRequests(f *testing.F) {
	for _, seed := range []string{
		chatBody, messagesBody, withStream(chatBody), withStream(messagesBody),
		anthropicRequest(anthropicToolTurns, `"tools":`+anthropicTools),
		openAIRequest(openAIToolTurns, `"tools":`+openAITools),
		withStream(openAIRequest(weatherQuestion, `"tools":`+openAITools)),
		withStream(anthropicRequest(weatherQuestion, `"tools":`+anthropicTools)),
		`{"model":"m","stream":true,"input":"Weather?","tools":[{"type":"function","name":"w","parameters":{"type":"object",` +
			`"properties":{"q":{"type":"string"}}}}]}`,
		`{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"é"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`,
		`{"model":"m","max_tokens":1e400,"messages":[{"role":"user","content":"\u00e9\ud800"}]}`,
		`{"model":"m","messages":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
		`{"model":"m","prompt":"p","input":["a",[1,2]]}`, `[]`, `{`, ``,
	} {
		for i := range fuzzPaths {
			f.Add(uint8(i), []byte(seed))
		}
	}
	s := fakellm.New(fakellm.Options{Seed: 1})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		out := w.Body.Bytes()
		switch {
		case w.Code != http.StatusOK && w.Code != http.StatusBadRequest:
			t.Fatalf("%s answered %d to %q: %s", path, w.Code, body, out)
		case strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream"):
			for _, line := range strings.Split(string(out), "\n") {
				data, ok := strings.CutPrefix(line, "data: ")
				if ok && data != "[DONE]" && !json.Valid([]byte(data)) {
					t.Fatalf("%s streamed an event that is not JSON for %q: %s", path, body, data)
				}
			}
		case !json.Valid(out):
			t.Fatalf("%s answered what is not JSON for %q: %s", path, body, out)
		case w.Code == http.StatusBadRequest && !bytes.Contains(out, []byte(`"message":"`)):
			t.Fatalf("%s refused %q without a message: %s", path, body, out)
		}
	})
}
