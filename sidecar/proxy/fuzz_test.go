package proxy

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

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
		// The upstream's name, as ServeCall reads it
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
