package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// recordingProxy is an HTTP forward proxy that answers for every model
// itself and remembers what it was asked.
type recordingProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	urls []string
	auth []string
}

var testProxy *recordingProxy

func newRecordingProxy() *recordingProxy {
	p := &recordingProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p.mu.Lock()
		p.urls = append(p.urls, r.URL.String()) // absolute-form, as a proxy receives it
		p.auth = append(p.auth, r.Header.Get("Authorization"))
		p.mu.Unlock()
		chatOK("via the proxy")(w, r)
	}))
	return p
}

func (p *recordingProxy) seen() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.urls...), append([]string(nil), p.auth...)
}

// A plain-HTTP model that is not on this host is reached through the proxy
// the environment names (by net/http's Transport); one on loopback
// directly (by package h1, which every other test of the package uses).
func TestPlainHTTPModelsFollowTheEnvironmentsProxy(t *testing.T) {
	remote := openaiModel("remote", "http://model.invalid:8000")
	remote.APIKey = "sk-remote"
	local := newScriptedModel(t, chatOK("from the local model"))
	cfg := &policies.Config{
		Breakers: map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)},
		Models:   map[string]policies.Model{"remote": remote, "local": openaiModel("local", local.srv.URL)},
		Gateway:  policies.Gateway{MaxRequestBytes: 1 << 20},
	}
	base, _ := gw(t, cfg)

	resp, body := post(t, base+"/v1/chat/completions", `{"model":"remote","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "via the proxy") {
		t.Fatalf("remote model: %s %s", resp.Status, body)
	}
	urls, auth := testProxy.seen()
	if len(urls) != 1 || urls[0] != "http://model.invalid:8000/v1/chat/completions" || auth[0] != "Bearer sk-remote" {
		t.Fatalf("the proxy saw %v with %v, want one call to http://model.invalid:8000/v1/chat/completions with the model's key", urls, auth)
	}

	resp, body = post(t, base+"/v1/chat/completions", `{"model":"local","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "from the local model") {
		t.Fatalf("local model: %s %s", resp.Status, body)
	}
	if urls, _ := testProxy.seen(); len(urls) != 1 {
		t.Errorf("the call to the loopback model went through the proxy: %v", urls)
	}
}
