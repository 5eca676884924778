package guard

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gavv/httpexpect/v2"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// backend stands for what the guards protect: it counts the requests that
// got through, notes the credential headers they still carried, and reads
// bodies whole, answering 408 with the error when one comes too late.
type backend struct {
	calls atomic.Int32
	mu    sync.Mutex
	creds strings.Builder
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	b.mu.Lock()
	for _, h := range []string{HeaderToken, "Authorization", "X-Api-Key", "X-Sidecar-Ingress-Token"} {
		b.creds.WriteString(r.Header.Get(h))
	}
	b.creds.WriteString("|")
	b.mu.Unlock()
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var late *BodyTimeoutError
		if errors.As(err, &late) {
			http.Error(w, late.Error(), http.StatusRequestTimeout)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (b *backend) seen() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.creds.String()
}

// startControl serves a backend behind Control with the listen block l
// (its Address is the server's own when empty) on a loopback server whose
// connections are capped at l.MaxConnections.
func startControl(t *testing.T, l policies.Listen, heartbeatToken string) (*httptest.Server, *backend, *httpexpect.Expect) {
	t.Helper()
	b := &backend{}
	srv := httptest.NewUnstartedServer(nil)
	srv.Listener = LimitListener(srv.Listener, l.MaxConnections)
	addr := srv.Listener.Addr().String()
	if l.Address == "" {
		l.Address = addr
	}
	srv.Config.Handler = Control(b, ControlOptions{Listen: func() policies.Listen { return l },
		Addr: func() string { return addr }, HeartbeatToken: heartbeatToken})
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, b, sidecartest.NewExpect(t, srv.URL)
}
