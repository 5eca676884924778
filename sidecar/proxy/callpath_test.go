package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// rawGet sends a request line as written, without any client cleaning the
// path, and returns the answer's status.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusBadRequest && !strings.Contains(string(b), "dot-segment") {
		t.Errorf("%s: 400 without saying why: %s", target, b)
	}
	return resp.StatusCode
}

func TestCallRefusesDotSegmentsBelowTheUpstream(t *testing.T) {
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	s, _ := callProxy(t, map[string]policies.Upstream{"search": {URL: up.URL + "/api/search"}},
		&sidecartest.Discovery{}, time.Minute)

	for _, p := range []string{"/call/search/../../admin", "/call/search/%2e%2e/%2e%2e/admin",
		"/call/search/..%2f..%2fadmin", "/call/search/%2e./admin", "/call/search/.%2E/admin",
		"/call/search/%252e%252e/admin", "/call/search/..%5c..%5cadmin", "/call/search/a/./b", "/call/search/..;/admin"} {
		if got := rawGet(t, s.Addr(), p); got != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", p, got)
		}
	}
	if n := up.Calls.Load(); n != 0 {
		t.Fatalf("the upstream received %d requests; last %q", n, up.LastBody())
	}
	// Names that merely contain dots pass
	if got := rawGet(t, s.Addr(), "/call/search/v1/file..txt/.well"); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	if got := up.LastBody(); got != "GET /api/search/v1/file..txt/.well " {
		t.Fatalf("the upstream received %q", got)
	}
}
