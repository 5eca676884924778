package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fixedCreated is the "created" time of translated answers in tests.
var fixedCreated = time.Unix(1741569952, 0)

func TestMain(m *testing.M) {
	answerClock = func() time.Time { return fixedCreated }
	os.Exit(m.Run())
}

// goldenSuite is a directory of inputs (NAME.json, from the providers'
// documented examples) and their translations (NAME.golden.json).
type goldenSuite struct {
	dir       string
	translate func([]byte) ([]byte, error)
	check     func(in, out []byte) error
}

var goldenSuites = []goldenSuite{
	{
		dir:       "chat_to_messages",
		translate: func(b []byte) ([]byte, error) { return ChatToAnthropic.Request(b, Options{}) },
		check:     func(in, out []byte) error { return checkMessagesRequest(out, true) },
	},
	{
		dir:       "messages_to_chat",
		translate: func(b []byte) ([]byte, error) { return MessagesToOpenAI.Request(b, Options{}) },
		check:     func(in, out []byte) error { return checkChatRequest(out, true) },
	},
	{
		dir:       "message_to_chat_answer",
		translate: func(b []byte) ([]byte, error) { return ChatToAnthropic.Answer(b, nil) },
		check:     func(in, out []byte) error { return checkChatAnswer(out) },
	},
	{
		dir:       "chat_to_message_answer",
		translate: func(b []byte) ([]byte, error) { return MessagesToOpenAI.Answer(b, nil) },
		check:     func(in, out []byte) error { return checkMessageAnswer(out) },
	},
}

// TestGolden translates each documented example and compares the result
// with its golden file (go test -update rewrites them), then checks the
// properties every translation must have.
func TestGolden(t *testing.T) {
	for _, s := range goldenSuites {
		for _, in := range goldenInputs(t, s.dir) {
			name := strings.TrimSuffix(filepath.Base(in), ".json")
			t.Run(s.dir+"/"+name, func(t *testing.T) {
				body, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				out, err := s.translate(body)
				if err != nil {
					t.Fatalf("translate: %v", err)
				}
				if err := s.check(body, out); err != nil {
					t.Errorf("%v\n%s", err, out)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, out, "", "  "); err != nil {
					t.Fatalf("output is not JSON: %v\n%s", err, out)
				}
				pretty.WriteByte('\n')
				golden := strings.TrimSuffix(in, ".json") + ".golden.json"
				if *update {
					if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to write it)", err)
				}
				if got := pretty.String(); got != string(want) {
					t.Errorf("%s differs from the translation:\ngot:\n%s\nwant:\n%s", golden, got, want)
				}
			})
		}
	}
}

// goldenInputs lists the inputs of a suite: its files that are not golden.
func goldenInputs(t testing.TB, dir string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.json") {
			inputs = append(inputs, f)
		}
	}
	if len(inputs) == 0 {
		t.Fatalf("no inputs under testdata/%s", dir)
	}
	return inputs
}
