package sidecar

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// FuzzParseHeartbeat feeds arbitrary bodies to the heartbeat parser: no
// panic; a body it accepts yields a valid status and stays within the
// limits; a body it rejects gets a message a person can act on.
func FuzzParseHeartbeat(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"status":"degraded","note":"n","metrics":{"q":3,"ok":true,"m":"gpt"},"progress":12}`,
		`{"status":"great"}`, `{"metrics":{"x":{"y":1}}}`, `{"progress":[1]}`, `{} {}`, `{"note":"\ud800"}`,
		`{"metrics":{"n":1e999}}`, `null`, `[]`,
		`{"status":"ok","status":"failing"}`, `{"metrics":{"q":1,"q":"x"}}`,
		`{"metrics":{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`,
		`{"progress":` + strings.Repeat(`{"a":`, 129) + `1` + strings.Repeat("}", 129) + `}`,
		strings.Repeat("[", 60_000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		hb, err := parseHeartbeat(body)
		var deep *jsonguard.Error
		if _, serr := jsonguard.Scan(body, jsonguard.MaxDepth); errors.As(serr, &deep) && deep.TooDeep &&
			(err == nil || !strings.Contains(err.Error(), "nested deeper than 128")) {
			t.Fatalf("a body nested deeper than the limit got %v: %q", err, body)
		}
		if err != nil {
			msg := err.Error()
			if msg == "" || !utf8.ValidString(msg) {
				t.Fatalf("unusable error %q for %q", msg, body)
			}
			return
		}
		switch hb.Status {
		case ReportOK, ReportDegraded, ReportFailing:
		default:
			t.Fatalf("accepted status %q from %q", hb.Status, body)
		}
		if len(hb.Note) > maxNoteLen || len(hb.Metrics) > maxMetrics {
			t.Fatalf("accepted a heartbeat over the limits from %q", body)
		}
	})
}

// FuzzCallPath feeds arbitrary request paths to /call/'s path handling: no
// panic; the path sent upstream is the part below the upstream's name; and
// whatever the path, the one forwarded to an upstream with a base path,
// decoded as often as a server might and cleaned, stays under that base.
func FuzzCallPath(f *testing.F) {
	for _, seed := range []string{"/call/search/v1/q", "/call/search", "/call/search/", "/call/search/a%2Fb",
		"/call/search/../../etc", "/call/searchx/y", "/call//x", "/call/search/%2e%2e/admin",
		"/call/search/..%2f..%2fadmin", "/call/search/%2e./x", "/call/search/%252e%252e/x", "/call/search/..%5cx",
		"/call/se%61rch/%2E%2E", "/call/search/a/..;/b"} {
		f.Add(seed)
	}
	const base = "/base"
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u.Path, "/call/") {
			return
		}
		// The upstream's name, as serveCall reads it
		name, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/call/"), "/")
		p, rawPath, problem := callPath(&http.Request{URL: u}, name)
		if problem != "" {
			return // refused with 400
		}
		if p == "" || p[0] != '/' {
			t.Fatalf("path %q below upstream %q from %q", p, name, raw)
		}
		if want := strings.TrimPrefix(u.Path, "/call/"+name); want != "" && p != want {
			t.Fatalf("path %q, want %q, from %q", p, want, raw)
		}
		// What the transport forwards: the base path, then the path below
		out := &url.URL{Path: base + p}
		if rawPath != "" {
			out.RawPath = base + rawPath
		}
		for _, fwd := range []string{out.Path, out.EscapedPath()} {
			seen := strings.ReplaceAll(decodeAll(fwd), "\\", "/")
			if c := path.Clean(seen); c != base && !strings.HasPrefix(c, base+"/") {
				t.Fatalf("%q is forwarded as %q, which a server reads as %q, above %s", raw, fwd, c, base)
			}
		}
	})
}
