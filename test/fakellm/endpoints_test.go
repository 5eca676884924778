package fakellm_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func TestChatCompletion(t *testing.T) {
	_, url := start(t, fakellm.Options{Reply: "The answer is 42."})
	resp, body := post(t, url+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	var c chatCompletion
	decode(t, body, &c)
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created == 0 || c.Model != "gpt-4o" {
		t.Fatalf("head: %s", body)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" ||
		c.Choices[0].Message.Content != "The answer is 42." || *c.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices: %s", body)
	}
	u := c.Usage
	if u == nil || u.PromptTokens < 1 || u.CompletionTokens < 1 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Fatalf("usage: %s", body)
	}
}

func TestChatCompletionStream(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	for _, usage := range []bool{false, true} {
		body := withStream(chatBody)
		if usage {
			body = strings.Replace(body, `{`, `{"stream_options":{"include_usage":true},`, 1)
		}
		resp, events, err := stream(t, url+"/v1/chat/completions", body)
		if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream broke (%v) or is not an event stream: %v", err, resp.Header)
		}
		n := len(events)
		if n < 5 || events[n-1].Data != "[DONE]" {
			t.Fatalf("want role, pieces, finish, [DONE]; got %+v", events)
		}
		chunks := make([]chatCompletion, n-1)
		for i := range chunks {
			decode(t, []byte(events[i].Data), &chunks[i])
			if chunks[i].Object != "chat.completion.chunk" || chunks[i].Model != "gpt-4o" || chunks[i].ID != chunks[0].ID {
				t.Fatalf("chunk %d: %s", i, events[i].Data)
			}
		}
		if d := chunks[0].Choices[0].Delta; d == nil || d.Role == nil || *d.Role != "assistant" {
			t.Fatalf("first delta has no role: %s", events[0].Data)
		}
		last := len(chunks) - 1
		if usage {
			if len(chunks[last].Choices) != 0 || chunks[last].Usage == nil || chunks[last].Usage.TotalTokens == 0 {
				t.Fatalf("usage chunk: %s", events[last].Data)
			}
			last--
		}
		fin := chunks[last].Choices[0]
		if fin.FinishReason == nil || *fin.FinishReason != "stop" || fin.Delta.Content != nil || fin.Delta.Role != nil {
			t.Fatalf("final chunk: %s", events[last].Data)
		}
		var text strings.Builder
		pieces := 0
		for _, c := range chunks[1:last] {
			if c.Choices[0].FinishReason != nil || c.Choices[0].Delta.Content == nil {
				t.Fatalf("content chunk: %+v", c)
			}
			text.WriteString(*c.Choices[0].Delta.Content)
			pieces++
		}
		if text.String() != fakellm.DefaultReply || pieces < 2 {
			t.Fatalf("content %q in %d pieces", text.String(), pieces)
		}
	}
}

func TestLegacyCompletion(t *testing.T) {
	_, url := start(t, fakellm.Options{Reply: "one two three"})
	req := `{"model":"gpt-3.5-turbo-instruct","prompt":"Count."}`
	_, body := post(t, url+"/v1/completions", req)
	var c chatCompletion
	decode(t, body, &c)
	if c.Object != "text_completion" || len(c.Choices) != 1 || c.Choices[0].Text != "one two three" ||
		*c.Choices[0].FinishReason != "stop" || c.Usage == nil {
		t.Fatalf("%s", body)
	}

	_, events, err := stream(t, url+"/v1/completions", withStream(req))
	if err != nil || len(events) != 5 || events[4].Data != "[DONE]" {
		t.Fatalf("%v %+v", err, events)
	}
	var text strings.Builder
	for i, e := range events[:4] {
		var c chatCompletion
		decode(t, []byte(e.Data), &c)
		text.WriteString(c.Choices[0].Text)
		if (c.Choices[0].FinishReason != nil) != (i == 3) {
			t.Fatalf("finish_reason on event %d: %s", i, e.Data)
		}
	}
	if text.String() != "one two three" {
		t.Fatalf("%q", text.String())
	}
}

type embeddingList struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestEmbeddings(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	vectors := func(body string) [][]float32 {
		t.Helper()
		resp, b := post(t, url+"/v1/embeddings", body)
		var l embeddingList
		decode(t, b, &l)
		if resp.StatusCode != http.StatusOK || l.Object != "list" || l.Model != "text-embedding-3-small" || l.Usage.TotalTokens < 1 {
			t.Fatalf("%s %s", resp.Status, b)
		}
		out := make([][]float32, len(l.Data))
		for i, d := range l.Data {
			if d.Object != "embedding" || d.Index != i {
				t.Fatalf("%s", b)
			}
			var s string
			if json.Unmarshal(d.Embedding, &s) == nil { // base64 of little-endian float32s
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				for j := 0; j+4 <= len(raw); j += 4 {
					out[i] = append(out[i], math.Float32frombits(binary.LittleEndian.Uint32(raw[j:])))
				}
			} else {
				decode(t, d.Embedding, &out[i])
			}
		}
		return out
	}
	one := vectors(`{"model":"text-embedding-3-small","input":"hello"}`)
	three := vectors(`{"model":"text-embedding-3-small","input":["hello","world","!"]}`)
	if len(one) != 1 || len(three) != 3 || len(one[0]) != 8 {
		t.Fatalf("%v %v", one, three)
	}
	if !slices.Equal(one[0], three[0]) || slices.Equal(three[0], three[1]) {
		t.Fatalf("equal inputs must give equal vectors, different ones different vectors: %v", three)
	}
	var norm float64
	for _, x := range one[0] {
		norm += float64(x) * float64(x)
	}
	if math.Abs(norm-1) > 1e-4 {
		t.Fatalf("not a unit vector: %v", one[0])
	}
	// The OpenAI SDKs ask for base64 unless told otherwise
	b64 := vectors(`{"model":"text-embedding-3-small","input":"hello","encoding_format":"base64"}`)
	if !slices.Equal(b64[0], one[0]) {
		t.Fatalf("base64 %v != float %v", b64[0], one[0])
	}
	if d := vectors(`{"model":"text-embedding-3-small","input":[[1,2,3]],"dimensions":16}`); len(d) != 1 || len(d[0]) != 16 {
		t.Fatalf("dimensions: %v", d)
	}
}

type responseObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	Status    string `json:"status"`
	Model     string `json:"model"`
	Output    []struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Status  string `json:"status"`
		Role    string `json:"role"`
		Content []struct {
			Type        string `json:"type"`
			Text        string `json:"text"`
			Annotations []any  `json:"annotations"`
		} `json:"content"`
	} `json:"output"`
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// outputText is the text of a response's messages.
func (r *responseObject) outputText() string {
	var s strings.Builder
	for _, o := range r.Output {
		for _, c := range o.Content {
			s.WriteString(c.Text)
		}
	}
	return s.String()
}

func TestResponses(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	_, body := post(t, url+"/v1/responses", `{"model":"gpt-4.1","input":"Say hello."}`)
	var r responseObject
	decode(t, body, &r)
	if !strings.HasPrefix(r.ID, "resp_") || r.Object != "response" || r.Status != "completed" || r.Model != "gpt-4.1" ||
		r.CreatedAt == 0 || len(r.Output) != 1 {
		t.Fatalf("%s", body)
	}
	o := r.Output[0]
	if o.Type != "message" || !strings.HasPrefix(o.ID, "msg_") || o.Status != "completed" || o.Role != "assistant" ||
		len(o.Content) != 1 || o.Content[0].Type != "output_text" || o.Content[0].Annotations == nil ||
		r.outputText() != fakellm.DefaultReply {
		t.Fatalf("%s", body)
	}
	if u := r.Usage; u == nil || u.InputTokens < 1 || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Fatalf("usage: %s", body)
	}
}

func TestResponsesStream(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	_, events, err := stream(t, url+"/v1/responses", `{"model":"gpt-4.1","input":"Say hello.","stream":true}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added",
		"response.content_part.added", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.delta", "response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.completed"}
	if !slices.Equal(names(events), want) {
		t.Fatalf("events %v, want %v", names(events), want)
	}
	var deltas strings.Builder
	var itemID string
	for i, e := range events {
		var ev struct {
			Type           string          `json:"type"`
			SequenceNumber *int            `json:"sequence_number"`
			ItemID         string          `json:"item_id"`
			OutputIndex    *int            `json:"output_index"`
			ContentIndex   *int            `json:"content_index"`
			Delta          string          `json:"delta"`
			Text           string          `json:"text"`
			Response       *responseObject `json:"response"`
		}
		decode(t, []byte(e.Data), &ev)
		if ev.Type != e.Name || ev.SequenceNumber == nil || *ev.SequenceNumber != i {
			t.Fatalf("event %d: %s: %s", i, e.Name, e.Data)
		}
		switch e.Name {
		case "response.created":
			if ev.Response == nil || ev.Response.Status != "in_progress" || ev.Response.Output == nil {
				t.Fatalf("%s", e.Data)
			}
		case "response.output_text.delta":
			if itemID == "" {
				itemID = ev.ItemID
			}
			if ev.ItemID != itemID || ev.OutputIndex == nil || ev.ContentIndex == nil {
				t.Fatalf("%s", e.Data)
			}
			deltas.WriteString(ev.Delta)
		case "response.output_text.done":
			if ev.Text != fakellm.DefaultReply {
				t.Fatalf("%s", e.Data)
			}
		case "response.completed":
			if ev.Response == nil || ev.Response.Status != "completed" || ev.Response.outputText() != fakellm.DefaultReply ||
				ev.Response.Output[0].ID != itemID || ev.Response.Usage == nil {
				t.Fatalf("%s", e.Data)
			}
		}
	}
	if deltas.String() != fakellm.DefaultReply {
		t.Fatalf("deltas %q", deltas.String())
	}
}

type anthropicMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason   *string         `json:"stop_reason"`
	StopSequence json.RawMessage `json:"stop_sequence"`
	Usage        *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

func TestMessages(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	resp, body := post(t, url+"/v1/messages", messagesBody, "x-api-key", "k", "anthropic-version", "2023-06-01")
	var m anthropicMessage
	decode(t, body, &m)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" ||
		m.Model != "claude-x" || len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text != fakellm.DefaultReply ||
		m.StopReason == nil || *m.StopReason != "end_turn" || string(m.StopSequence) != "null" ||
		m.Usage == nil || m.Usage.InputTokens < 1 || m.Usage.OutputTokens < 1 {
		t.Fatalf("%s %s", resp.Status, body)
	}
}

func TestMessagesStream(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	_, events, err := stream(t, url+"/v1/messages", withStream(messagesBody))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
		"content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if !slices.Equal(names(events), want) {
		t.Fatalf("events %v, want %v", names(events), want)
	}
	var text strings.Builder
	for _, e := range events {
		var ev struct {
			Type    string            `json:"type"`
			Message *anthropicMessage `json:"message"`
			Index   *int              `json:"index"`
			Block   *struct {
				Type string  `json:"type"`
				Text *string `json:"text"`
			} `json:"content_block"`
			Delta *struct {
				Type       string  `json:"type"`
				Text       string  `json:"text"`
				StopReason *string `json:"stop_reason"`
			} `json:"delta"`
			Usage *struct {
				OutputTokens int `json:"output_tokens"`
			} `json:"usage"`
		}
		decode(t, []byte(e.Data), &ev)
		if ev.Type != e.Name {
			t.Fatalf("%s: %s", e.Name, e.Data)
		}
		switch e.Name {
		case "message_start":
			if m := ev.Message; m == nil || m.Role != "assistant" || m.Model != "claude-x" || len(m.Content) != 0 ||
				m.StopReason != nil || m.Usage == nil {
				t.Fatalf("%s", e.Data)
			}
		case "content_block_start":
			if ev.Index == nil || *ev.Index != 0 || ev.Block == nil || ev.Block.Type != "text" || ev.Block.Text == nil {
				t.Fatalf("%s", e.Data)
			}
		case "content_block_delta":
			if ev.Index == nil || ev.Delta == nil || ev.Delta.Type != "text_delta" {
				t.Fatalf("%s", e.Data)
			}
			text.WriteString(ev.Delta.Text)
		case "message_delta":
			if ev.Delta == nil || ev.Delta.StopReason == nil || *ev.Delta.StopReason != "end_turn" ||
				ev.Usage == nil || ev.Usage.OutputTokens < 1 {
				t.Fatalf("%s", e.Data)
			}
		}
	}
	if text.String() != fakellm.DefaultReply {
		t.Fatalf("%q", text.String())
	}
}

func TestModelsListsTheModelsSeen(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	post(t, url+"/v1/chat/completions", chatBody)
	post(t, url+"/v1/messages", messagesBody)

	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ids []string
	for _, m := range list.Data {
		if m.Object != "model" {
			t.Fatalf("%+v", list)
		}
		ids = append(ids, m.ID)
	}
	if list.Object != "list" || !slices.Equal(ids, []string{"claude-x", "fake-model", "gpt-4o"}) {
		t.Fatalf("%+v", list)
	}

	// Anthropic's SDKs send anthropic-version and get Anthropic's shape
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/models", nil)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var alist struct {
		Data    []struct{ Type, ID string }
		HasMore *bool  `json:"has_more"`
		FirstID string `json:"first_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alist); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(alist.Data) != 3 || alist.Data[0].Type != "model" || alist.HasMore == nil || alist.FirstID != "claude-x" {
		t.Fatalf("%+v", alist)
	}
}

func TestBadRequestsAreRejectedLikeTheProviders(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	for _, tc := range []struct {
		name, path, body string
		status           int
		anthropic        bool
		says             string
	}{
		{"malformed JSON", "/v1/chat/completions", `{"model":`, 400, false, "parse the JSON body"},
		{"not an object", "/v1/responses", `[1,2]`, 400, false, "parse the JSON body"},
		{"no model", "/v1/chat/completions", `{"messages":[]}`, 400, false, "model"},
		{"no embedding input", "/v1/embeddings", `{"model":"e"}`, 400, false, "input"},
		{"unknown path", "/v1/nothing", `{}`, 404, false, "/v1/nothing"},
		{"anthropic malformed JSON", "/v1/messages", `{"model"`, 400, true, "JSON"},
		{"anthropic no model", "/v1/messages", `{"max_tokens":5,"messages":[]}`, 400, true, "model"},
		{"anthropic no max_tokens", "/v1/messages", `{"model":"claude-x","messages":[]}`, 400, true, "max_tokens"},
	} {
		resp, body := post(t, url+tc.path, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s %s", tc.name, resp.Status, body)
			continue
		}
		if tc.anthropic {
			var e anthropicError
			decode(t, body, &e)
			if e.Type != "error" || e.Error == nil || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.says) {
				t.Errorf("%s: %s", tc.name, body)
			}
		} else {
			var e openAIError
			decode(t, body, &e)
			if e.Error == nil || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.says) ||
				!strings.Contains(string(body), `"param":null`) {
				t.Errorf("%s: %s", tc.name, body)
			}
		}
	}
	resp, err := http.Get(url + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Fatalf("GET /v1/chat/completions: %s %v", resp.Status, resp.Header)
	}
}

func TestJSONIsAnsweredWhenJSONIsAskedFor(t *testing.T) {
	_, url := start(t, fakellm.Options{Reply: "Paris"})
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"Answer in JSON."}],"response_format":{"type":"json_object"}}`},
		{"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"Where?"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{}}}}`},
		{"/v1/responses", `{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"a","schema":{}}}}`},
		{"/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Where?"}],"output_format":{"type":"json_schema","schema":{}}}`},
	} {
		_, body := post(t, url+tc.path, tc.body)
		text := answerText(t, tc.path, body)
		var v map[string]string
		if err := json.Unmarshal([]byte(text), &v); err != nil || v["answer"] != "Paris" {
			t.Errorf("%s %s: %q is not the JSON asked for (%v)", tc.path, tc.body, text, err)
		}
	}
	// A reply that is a JSON object is answered as it is
	_, url = start(t, fakellm.Options{Reply: `{"city":"Paris"}`})
	_, body := post(t, url+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"Answer in JSON."}],"response_format":{"type":"json_object"}}`)
	if text := answerText(t, "/v1/chat/completions", body); text != `{"city":"Paris"}` {
		t.Fatalf("%q", text)
	}
}

// answerText is the completion text of a plain answer of path.
func answerText(t *testing.T, path string, body []byte) string {
	t.Helper()
	switch path {
	case "/v1/chat/completions":
		var c chatCompletion
		decode(t, body, &c)
		return c.Choices[0].Message.Content
	case "/v1/completions":
		var c chatCompletion
		decode(t, body, &c)
		return c.Choices[0].Text
	case "/v1/responses":
		var r responseObject
		decode(t, body, &r)
		return r.outputText()
	case "/v1/messages":
		var m anthropicMessage
		decode(t, body, &m)
		var s strings.Builder
		for _, c := range m.Content {
			s.WriteString(c.Text)
		}
		return s.String()
	}
	t.Fatalf("no text in answers of %s", path)
	return ""
}
