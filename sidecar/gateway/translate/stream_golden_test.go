package translate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Golden tests: each case under testdata/streams/<direction>/<case> holds
// the agent's request (request.json), the provider's stream as its
// documentation shows it (upstream.sse) and the stream the agent gets
// (want.sse, rewritten by go test -run Golden -update).

// streamGoldenCreated is the "created" time of converted OpenAI chunks in tests.
var streamGoldenCreated = time.Unix(1741570283, 0)

// newGoldenStream is the converter of a direction, with a fixed clock.
func newGoldenStream(direction string, request []byte) Stream {
	if direction == "messages_to_chat" {
		s := newMessagesToChatStream(request).(*messagesToChatStream)
		s.now = func() time.Time { return streamGoldenCreated }
		return s
	}
	return newChatToMessagesStream(request)
}

func TestStreamGolden(t *testing.T) {
	for _, direction := range []string{"messages_to_chat", "chat_to_messages"} {
		for _, c := range streamCases(t, direction) {
			t.Run(direction+"/"+c.name, func(t *testing.T) {
				s := newGoldenStream(direction, c.request)
				got, err := convertStream(s, c.upstream)
				if err != nil {
					t.Fatalf("converting the documented stream: %v", err)
				}
				if !s.Done() {
					t.Error("Done() is false after the whole stream")
				}
				if err := checkStreamOutput(direction, c.request, got, s.Done()); err != nil {
					t.Errorf("the converted stream breaks the agent's grammar: %v\n%s", err, got)
				}
				path := filepath.Join(c.dir, "want.sse")
				if updatingGolden() {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -run TestStreamGolden -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("converted stream differs from %s (-update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
				}
			})
		}
	}
}

// checkStreamOutput checks a converted stream against the grammar of the
// agent's provider.
func checkStreamOutput(direction string, request, out []byte, done bool) error {
	if direction == "messages_to_chat" {
		return checkChatStreamGrammar(splitStreamEvents(out), done, streamIncludeUsage(request))
	}
	return checkMessagesStreamGrammar(splitStreamEvents(out), done)
}
