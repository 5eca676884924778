package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestCloseIdleToForgetsTheAddress(t *testing.T) {
	a := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "a") })
	b := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "b") })
	tr := newTransport(t)
	do(t, tr, http.MethodGet, a.URL, "")
	do(t, tr, http.MethodGet, b.URL, "")
	if n := tr.idleCount(); n != 2 {
		t.Fatalf("%d idle connections, want 2", n)
	}
	tr.CloseIdleTo(strings.TrimPrefix(a.URL, "http://"))
	testutil.Eventually(t, "a's connection closed", 5*time.Second, func() bool { return a.closed.Load() == 1 })
	tr.mu.Lock()
	keys := len(tr.idle)
	tr.mu.Unlock()
	if n := tr.idleCount(); n != 1 || keys != 1 || b.closed.Load() != 0 {
		t.Fatalf("after forgetting a: %d idle connections under %d addresses, b closed %d", n, keys, b.closed.Load())
	}
}
