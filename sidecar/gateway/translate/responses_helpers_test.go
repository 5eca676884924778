package translate

// Test helpers of the Responses translation: golden files, SSE splitting,
// and the checks that a translated request is one Anthropic accepts and
// that a converted stream is one the OpenAI SDKs' accumulators accept.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/tidwall/gjson"
)

// -update rewrites the golden files. It is registered here only if no
// other test file of the package registered it first.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata")
	}
}

func responsesUpdating() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// responsesFixedClock makes created_at 1741476777 for the test.
func responsesFixedClock(t testing.TB) {
	saved := responsesNow
	responsesNow = func() time.Time { return time.Unix(1741476777, 0) }
	t.Cleanup(func() { responsesNow = saved })
}

// responsesInputs lists dir's files ending in ext, golden files and
// requests of streams left out.
func responsesInputs(t testing.TB, dir, ext string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "responses", dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, n := range names {
		if !strings.Contains(filepath.Base(n), ".golden.") && !strings.HasSuffix(n, ".request.json") {
			inputs = append(inputs, n)
		}
	}
	if len(inputs) == 0 {
		t.Fatalf("no %s files in testdata/responses/%s", ext, dir)
	}
	return inputs
}

// responsesGoldenName is the golden file of input: x.json → x.golden.json.
func responsesGoldenName(input string) string {
	ext := filepath.Ext(input)
	return strings.TrimSuffix(input, ext) + ".golden" + ext
}

// responsesGolden compares got with the golden file (JSON is indented
// first, for readable diffs), or rewrites it under -update.
func responsesGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if strings.HasSuffix(golden, ".json") {
		var b bytes.Buffer
		if err := json.Indent(&b, got, "", "  "); err != nil {
			t.Fatalf("the output is not JSON: %v\n%s", err, got)
		}
		b.WriteByte('\n')
		got = b.Bytes()
	}
	if responsesUpdating() {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(want)),
			B: difflib.SplitLines(string(got)), FromFile: golden, ToFile: "got", Context: 2})
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, diff)
	}
}

// responsesSSE is one server-sent event.
type responsesSSE struct {
	name string
	data []byte
}

// responsesSplitSSE splits a text/event-stream into its events, as the
// gateway's event reader does.
func responsesSplitSSE(b []byte) []responsesSSE {
	var events []responsesSSE
	for _, block := range bytes.Split(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		var ev responsesSSE
		var data [][]byte
		for _, line := range bytes.Split(block, []byte("\n")) {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.name = string(value)
			case "data":
				data = append(data, value)
			}
		}
		if data != nil {
			ev.data = bytes.Join(data, []byte("\n"))
			events = append(events, ev)
		}
	}
	return events
}

// responsesRun converts a whole Anthropic stream.
func responsesRun(t testing.TB, request, stream []byte) ([]byte, Stream) {
	t.Helper()
	s := newMessagesToResponsesStream(request)
	var out []byte
	for _, ev := range responsesSplitSSE(stream) {
		var err error
		if out, err = s.Event(out, ev.name, ev.data); err != nil {
			t.Fatalf("event %s %s: %v", ev.name, ev.data, err)
		}
	}
	return out, s
}

// responsesCheckMessages checks what Anthropic requires of a request:
// max_tokens, turns alternating from the user's to the user's, no empty
// content or blank text, every tool_use answered first thing in the next
// turn, every tool_result answering the turn before.
func responsesCheckMessages(body []byte) error {
	if !json.Valid(body) {
		return errors.New("not JSON")
	}
	req := gjson.ParseBytes(body)
	if req.Get("max_tokens").Int() < 1 {
		return errors.New("no max_tokens")
	}
	turns := req.Get("messages").Array()
	if len(turns) == 0 {
		return errors.New("no messages")
	}
	var calls []string
	for i, turn := range turns {
		want := [2]string{"user", "assistant"}[i%2]
		if role := turn.Get("role").Str; role != want {
			return fmt.Errorf("messages[%d] is %s, want %s", i, role, want)
		}
		blocks := turn.Get("content").Array()
		if len(blocks) == 0 {
			return fmt.Errorf("messages[%d] has no content", i)
		}
		var results []string
		for j, b := range blocks {
			switch b.Get("type").Str {
			case "text":
				if strings.TrimSpace(b.Get("text").Str) == "" {
					return fmt.Errorf("messages[%d].content[%d] is blank text", i, j)
				}
			case "tool_use":
				calls = append(calls, b.Get("id").Str)
			case "tool_result":
				if j != len(results) {
					return fmt.Errorf("messages[%d].content[%d] is a tool_result after other content", i, j)
				}
				results = append(results, b.Get("tool_use_id").Str)
			case "image":
				if want != "user" {
					return fmt.Errorf("messages[%d].content[%d] is an image in an assistant turn", i, j)
				}
			default:
				return fmt.Errorf("messages[%d].content[%d] is not a text, image, tool_use or tool_result block", i, j)
			}
		}
		if want == "user" {
			if strings.Join(results, ",") != strings.Join(calls, ",") {
				return fmt.Errorf("messages[%d] answers tool calls %v, want %v", i, results, calls)
			}
			calls = nil
		}
	}
	if len(turns)%2 == 0 {
		return errors.New("the last turn is the assistant's")
	}
	return nil
}

// responsesItem is an output item as a stream's events build it.
type responsesItem struct {
	typ, id, text, args      string
	part, textDone, partDone bool
	argsDone, done           bool
}

// responsesGrammar checks converted events the way the OpenAI SDKs'
// accumulators read them, and accumulates the output as they do.
type responsesGrammar struct {
	seq     int64
	stage   int // 0 before response.created, 1 after it, 2 after response.in_progress
	items   []*responsesItem
	ended   bool
	final   gjson.Result // the response of the terminal event
	errored bool
}

// feed checks the events in out.
func (g *responsesGrammar) feed(out []byte) error {
	if len(out) == 0 {
		return nil
	}
	if !bytes.HasSuffix(out, []byte("\n\n")) {
		return errors.New("the events do not end with a blank line")
	}
	for _, frame := range bytes.Split(out[:len(out)-2], []byte("\n\n")) {
		lines := bytes.Split(frame, []byte("\n"))
		if len(lines) != 2 || !bytes.HasPrefix(lines[0], []byte("event: ")) || !bytes.HasPrefix(lines[1], []byte("data: ")) {
			return fmt.Errorf("an event is not framed as event: and data: lines: %q", frame)
		}
		if err := g.event(string(lines[0][len("event: "):]), lines[1][len("data: "):]); err != nil {
			return fmt.Errorf("%w in %s", err, frame)
		}
	}
	return nil
}

// event checks one event.
func (g *responsesGrammar) event(name string, data []byte) error {
	if g.ended {
		return errors.New("an event after the end")
	}
	if !json.Valid(data) {
		return errors.New("data is not JSON")
	}
	ev := gjson.ParseBytes(data)
	if ev.Get("type").Str != name {
		return errors.New("type differs from the event name")
	}
	if n := ev.Get("sequence_number"); n.Type != gjson.Number || n.Int() != g.seq {
		return fmt.Errorf("sequence_number is %s, want %d", n.Raw, g.seq)
	}
	g.seq++
	if name == "error" {
		g.ended, g.errored = true, true
		if ev.Get("code").Type != gjson.String || ev.Get("message").Str == "" || ev.Get("param").Type != gjson.Null {
			return errors.New("an error event without code, message and param")
		}
		return nil
	}
	switch {
	case name == "response.created" && g.stage == 0, name == "response.in_progress" && g.stage == 1:
		g.stage++
		if r := ev.Get("response"); r.Get("status").Str != "in_progress" || r.Get("output").Raw != "[]" {
			return errors.New("the starting response is not in_progress with empty output")
		}
		return nil
	case g.stage != 2:
		return errors.New("an event before response.created and response.in_progress")
	}
	idx := ev.Get("output_index")
	var it *responsesItem
	if name != "response.output_item.added" && idx.Exists() {
		if idx.Int() < 0 || idx.Int() >= int64(len(g.items)) {
			return errors.New("output_index names no item")
		}
		it = g.items[idx.Int()]
		if it.done {
			return errors.New("an event for an item that is done")
		}
		if id := ev.Get("item_id"); id.Exists() && id.Str != it.id {
			return errors.New("item_id differs from the item's id")
		}
		if ci := ev.Get("content_index"); ci.Exists() && ci.Int() != 0 {
			return errors.New("content_index is not 0")
		}
	}
	return g.item(name, ev, idx, it)
}

// item checks an item event or the terminal event.
func (g *responsesGrammar) item(name string, ev, idx gjson.Result, it *responsesItem) error {
	wantType := func(typ string) error {
		if it == nil || it.typ != typ {
			return errors.New(name + " for an item that is not a " + typ)
		}
		return nil
	}
	switch name {
	case "response.output_item.added":
		item := ev.Get("item")
		if idx.Int() != int64(len(g.items)) || item.Get("status").Str != "in_progress" || item.Get("id").Str == "" {
			return errors.New("an added item not at the next index, or not in_progress, or without id")
		}
		n := &responsesItem{typ: item.Get("type").Str, id: item.Get("id").Str}
		if !(n.typ == "message" && item.Get("content").Raw == "[]") && !(n.typ == "function_call" && item.Get("arguments").Raw == `""`) {
			return errors.New("an added item that is neither an empty message nor a function_call without arguments")
		}
		g.items = append(g.items, n)
	case "response.content_part.added":
		if err := wantType("message"); err != nil || it.part || ev.Get("part.text").Raw != `""` {
			return errors.New("a second or non-empty part, or one outside a message")
		}
		it.part = true
	case "response.output_text.delta":
		if err := wantType("message"); err != nil || !it.part || it.textDone || ev.Get("delta").Str == "" {
			return errors.New("a text delta outside an open part, or empty")
		}
		it.text += ev.Get("delta").Str
	case "response.output_text.done":
		if err := wantType("message"); err != nil || !it.part || it.textDone || ev.Get("text").Str != it.text {
			return errors.New("output_text.done whose text is not the deltas'")
		}
		it.textDone = true
	case "response.content_part.done":
		if err := wantType("message"); err != nil || !it.textDone || it.partDone || ev.Get("part.text").Str != it.text {
			return errors.New("content_part.done before output_text.done, or with other text")
		}
		it.partDone = true
	case "response.function_call_arguments.delta":
		if err := wantType("function_call"); err != nil || it.argsDone {
			return errors.New("an arguments delta after their done")
		}
		it.args += ev.Get("delta").Str
	case "response.function_call_arguments.done":
		args := ev.Get("arguments").Str
		if err := wantType("function_call"); err != nil || it.argsDone || !(args == it.args || it.args == "" && args == "{}") {
			return errors.New("arguments.done whose arguments are not the deltas'")
		}
		it.args, it.argsDone = args, true
	case "response.output_item.done":
		if it == nil {
			return errors.New("output_item.done without output_index")
		}
		if err := it.matches(ev.Get("item")); err != nil {
			return err
		}
		it.done = true
	case "response.completed", "response.incomplete":
		out := ev.Get("response.output").Array()
		if len(out) != len(g.items) {
			return errors.New("the final output has another number of items than the events added")
		}
		for i, it := range g.items {
			if !it.done {
				return errors.New("the response ended with an item not done")
			}
			if err := it.matches(out[i]); err != nil {
				return fmt.Errorf("final output[%d]: %w", i, err)
			}
		}
		if ev.Get("response.status").Str != strings.TrimPrefix(name, "response.") || !ev.Get("response.usage").IsObject() {
			return errors.New("the final response's status is not its event's, or it has no usage")
		}
		g.ended, g.final = true, ev.Get("response")
	default:
		return errors.New("an event type the SDKs do not know")
	}
	return nil
}

// matches checks a completed item against what the events built.
func (it *responsesItem) matches(item gjson.Result) error {
	if item.Get("type").Str != it.typ || item.Get("id").Str != it.id || item.Get("status").Str != "completed" {
		return errors.New("a done item of another type or id, or not completed")
	}
	if it.typ == "message" && (!it.partDone || item.Get("content.#").Int() != 1 || item.Get("content.0.text").Str != it.text) {
		return errors.New("a done message whose text is not the deltas'")
	}
	if it.typ == "function_call" && (!it.argsDone || item.Get("arguments").Str != it.args) {
		return errors.New("a done function_call whose arguments are not the deltas'")
	}
	return nil
}
