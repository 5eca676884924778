package fakellm_test

import (
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// get fetches url and decodes its JSON answer into v; it returns the status.
func get(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		decode(t, b, v)
	}
	return resp.StatusCode
}

type faultsView struct {
	FailNext     int     `json:"fail_next"`
	FailStatus   int     `json:"fail_status"`
	FailRate     float64 `json:"fail_rate"`
	Latency      string  `json:"latency"`
	Stall        string  `json:"stall"`
	CutAfter     int     `json:"cut_after"`
	Reset        bool    `json:"reset"`
	Empty        bool    `json:"empty"`
	InvalidJSON  bool    `json:"invalid_json"`
	EventDelay   string  `json:"event_delay"`
	RetryAfter   string  `json:"retry_after"`
	Quota        bool    `json:"quota"`
	ContextLimit int     `json:"context_limit"`
	Reply        string  `json:"reply"`
}

func TestControlEndpointRoundTrips(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{Empty: true}})
	resp, body := post(t, url+"/_control", `{"fail_next":3,"fail_status":429,"fail_rate":12.5,"latency":"50ms",
		"stall":"10s","cut_after":4,"invalid_json":true,"event_delay":100,"retry_after":"2s","quota":true,"context_limit":8000,
		"reply":"Bonjour."}`)
	var v faultsView
	decode(t, body, &v)
	want := faultsView{FailNext: 3, FailStatus: 429, FailRate: 12.5, Latency: "50ms", Stall: "10s", CutAfter: 4,
		Empty: true, InvalidJSON: true, EventDelay: "100ms", RetryAfter: "2s", Quota: true, ContextLimit: 8000, Reply: "Bonjour."}
	if resp.StatusCode != http.StatusOK || v != want {
		t.Fatalf("%s\n got %+v\nwant %+v", resp.Status, v, want)
	}
	wantFaults := fakellm.Faults{FailNext: 3, FailStatus: 429, FailRate: 12.5, Latency: 50 * time.Millisecond,
		Stall: 10 * time.Second, CutAfter: 4, Empty: true, InvalidJSON: true, EventDelay: 100 * time.Millisecond,
		RetryAfter: 2 * time.Second, Quota: true, ContextLimit: 8000}
	if f := s.Faults(); f != wantFaults || s.Reply() != "Bonjour." {
		t.Fatalf("%+v %q", f, s.Reply())
	}
	var again faultsView
	if get(t, url+"/_control", &again); again != want {
		t.Fatalf("GET /_control: %+v", again)
	}

	// Omitted fields stay as they are; false and 0 clear
	_, body = post(t, url+"/_control", `{"empty":false,"stall":"0s"}`)
	decode(t, body, &v)
	want.Empty, want.Stall = false, "0s"
	if v != want {
		t.Fatalf("partial update: %+v", v)
	}

	// /_heal clears every fault and keeps the reply
	_, body = post(t, url+"/_heal", ``)
	decode(t, body, &v)
	if v != (faultsView{FailStatus: 500, Latency: "0s", Stall: "0s", EventDelay: "0s", RetryAfter: "0s", Reply: "Bonjour."}) ||
		s.Faults() != (fakellm.Faults{}) {
		t.Fatalf("after heal: %+v %+v", v, s.Faults())
	}
	if _, body := post(t, url+"/v1/chat/completions", chatBody); answerText(t, "/v1/chat/completions", body) != "Bonjour." {
		t.Fatalf("%s", body)
	}

	for _, bad := range []string{`{"fail_nxt":1}`, `{"latency":"soon"}`, `{"fail_rate":150}`, `{"fail_status":200}`,
		`{"fail_next":-1}`, `{"context_limit":-5}`, `{"quota":"yes"}`, `not json`} {
		resp, body := post(t, url+"/_control", bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %s %s", bad, resp.Status, body)
		}
	}
	if s.Faults() != (fakellm.Faults{}) {
		t.Fatalf("a rejected change changed the faults: %+v", s.Faults())
	}
	if resp, _ := post(t, url+"/_nothing", `{}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown control endpoint: %s", resp.Status)
	}
}

func TestStatsCountEveryAPICall(t *testing.T) {
	s, url := start(t, fakellm.Options{Name: "gpt-4o"})
	post(t, url+"/_control", `{"fail_next":1}`)
	post(t, url+"/v1/chat/completions", chatBody) // injected failure
	post(t, url+"/v1/chat/completions", chatBody)
	post(t, url+"/v1/messages", messagesBody)
	post(t, url+"/v1/messages", `{"model":"claude-x"}`) // no max_tokens
	get(t, url+"/v1/models", nil)

	var st fakellm.Stats
	get(t, url+"/_stats", &st)
	want := fakellm.Stats{Name: "gpt-4o", Calls: 5, Failed: 2, BadRequests: 1,
		ByPath:  map[string]int64{"/v1/chat/completions": 2, "/v1/messages": 2, "/v1/models": 1},
		ByModel: map[string]int64{"gpt-4o": 2, "claude-x": 2}}
	same := func(a, b fakellm.Stats) bool {
		return a.Name == b.Name && a.Calls == b.Calls && a.Failed == b.Failed && a.BadRequests == b.BadRequests &&
			maps.Equal(a.ByPath, b.ByPath) && maps.Equal(a.ByModel, b.ByModel)
	}
	if !same(st, want) || !same(s.Stats(), want) {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	_, body := post(t, url+"/_stats/reset", ``)
	st = fakellm.Stats{}
	decode(t, body, &st)
	if st.Calls != 0 || st.Failed != 0 || len(st.ByPath) != 0 || len(st.ByModel) != 0 || s.Stats().Calls != 0 {
		t.Fatalf("after reset: %s", body)
	}
}

func TestLastRecordsTheRawRequest(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	if status := get(t, url+"/_last", nil); status != http.StatusNotFound {
		t.Fatalf("before any call: %d", status)
	}
	if _, ok := s.Last(); ok {
		t.Fatal("Last before any call")
	}
	raw := "{ \"model\" : \"claude-x\",\n  \"max_tokens\":5, \"messages\":[{\"role\":\"user\",\"content\":\"caf\u00e9 \\u00e9\"}] }"
	post(t, url+"/v1/messages?beta=true", raw, "x-api-key", "sk-ant-test", "anthropic-version", "2023-06-01")

	var last struct {
		Method  string              `json:"method"`
		Path    string              `json:"path"`
		Query   string              `json:"query"`
		Headers map[string][]string `json:"headers"`
		Body    string              `json:"body"`
	}
	get(t, url+"/_last", &last)
	if last.Method != "POST" || last.Path != "/v1/messages" || last.Query != "beta=true" || last.Body != raw ||
		http.Header(last.Headers).Get("X-Api-Key") != "sk-ant-test" || http.Header(last.Headers).Get("Anthropic-Version") != "2023-06-01" {
		t.Fatalf("%+v", last)
	}
	r, ok := s.Last()
	if !ok || r.Body != raw || r.Header.Get("x-api-key") != "sk-ant-test" {
		t.Fatalf("%+v", r)
	}
	// Control calls are not API calls
	post(t, url+"/_control", `{}`)
	if r, _ := s.Last(); r.Path != "/v1/messages" {
		t.Fatalf("%+v", r)
	}
	var st fakellm.Stats
	if get(t, url+"/_stats", &st); st.Calls != 1 {
		t.Fatalf("%+v", st)
	}
}
