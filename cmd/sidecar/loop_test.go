//go:build e2e

package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// Two sidecars whose upstreams point at each other's /call/ path: a call
// goes round once and is refused with 508; both keep serving.
func TestCallLoopBetweenTwoSidecarsIsRefused(t *testing.T) {
	pa, pb := testutil.FreePort(t), testutil.FreePort(t)
	cfg := func(id string, port, other int, name, otherName string) string {
		return fmt.Sprintf(`
agent {
  name = "writer"
  id   = %q
}
listen { address = "127.0.0.1:%d" }
consul { address = "127.0.0.1:1" }
upstream %q {
  url     = "http://127.0.0.1:%d/call/%s"
  timeout = "2s"
}
`, id, port, name, other, otherName)
	}
	start := func(id, body string, port int) string {
		control, _ := startHealthySidecar(t, id, writeFile(t, t.TempDir(), id+".hcl", body), port)
		return control
	}
	a := start("writer-1", cfg("writer-1", pa, pb, "there", "back"), pa)
	b := start("writer-2", cfg("writer-2", pb, pa, "back", "there"), pb)

	resp, err := http.Get(a + "/call/there/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusLoopDetected || !strings.Contains(string(body), "loop_detected") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, control := range []string{a, b} {
		if _, _, code := runCLI(t, nil, "health", "-q", "-addr", control); code != exitOK {
			t.Fatalf("%s does not answer /v1/health after the loop", control)
		}
	}
}

// A configuration whose upstream points at the sidecar's own listener is
// refused with the position of the url.
func TestValidateRefusesAnUpstreamPointingAtItsOwnSidecar(t *testing.T) {
	file := writeFile(t, t.TempDir(), "self.hcl", `agent { name = "writer" }
listen { address = "127.0.0.1:7070" }
upstream "me" {
  url = "http://localhost:7070/call/me"
}
`)
	out, errOut, code := runCLI(t, nil, "validate", file)
	if code != exitError || !strings.Contains(out+errOut, file+":4:3") ||
		!strings.Contains(out+errOut, `points at this sidecar's own listen.address "127.0.0.1:7070"`) {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}
