package translate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Test-only reading of server-sent events, and running a converter over a
// whole stream.

func init() {
	// Golden files are rewritten with -update. Another test file of the
	// package may define the same flag; it is registered once.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata")
	}
}

// updatingGolden reports whether the tests were run with -update.
func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// streamTestEvent is one server-sent event: its "event:" name and its data lines
// joined by "\n".
type streamTestEvent struct {
	name string
	data []byte
}

// splitStreamEvents splits a text/event-stream into events the way the gateway's
// reader does: fields up to a blank line, "\r\n" or "\n" line ends, one
// space after the colon dropped, comments skipped, events of comments
// alone skipped. An event left open at the end is returned too.
func splitStreamEvents(b []byte) []streamTestEvent {
	var (
		events []streamTestEvent
		ev     streamTestEvent
		seen   bool
	)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			if seen {
				events = append(events, ev)
			}
			ev, seen = streamTestEvent{}, false
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.name, seen = string(value), true
		case "data":
			if ev.data != nil {
				ev.data = append(ev.data, '\n')
			} else {
				ev.data = []byte{}
			}
			ev.data, seen = append(ev.data, value...), true
		case "":
		default:
			seen = true
		}
	}
	if seen {
		events = append(events, ev)
	}
	return events
}

// convertStream feeds every event of upstream to s and returns what s appended,
// stopping at the first error, which it returns.
func convertStream(s Stream, upstream []byte) ([]byte, error) {
	var out []byte
	for _, ev := range splitStreamEvents(upstream) {
		var err error
		if out, err = s.Event(out, ev.name, ev.data); err != nil {
			return out, err
		}
	}
	return out, nil
}

// streamCase is one directory of testdata/streams/<direction>: the agent's
// request, the upstream stream and the stream the agent should get.
type streamCase struct {
	name     string
	dir      string
	request  []byte
	upstream []byte
}

// streamCases reads the cases of testdata/streams/<direction>.
func streamCases(t testing.TB, direction string) []streamCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "streams", direction, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases under testdata/streams/%s (%v)", direction, err)
	}
	var cases []streamCase
	for _, dir := range dirs {
		c := streamCase{name: filepath.Base(dir), dir: dir}
		if c.request, err = os.ReadFile(filepath.Join(dir, "request.json")); err != nil {
			t.Fatal(err)
		}
		if c.upstream, err = os.ReadFile(filepath.Join(dir, "upstream.sse")); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	return cases
}
