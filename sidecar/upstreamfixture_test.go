package sidecar

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// scripted is an upstream whose answer can be changed while it runs, and
// which counts the calls it received.
type scripted struct {
	name   string
	status atomic.Int32
	delay  atomic.Int64 // nanoseconds
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []string
	srv    *httptest.Server
}

func newScripted(t *testing.T, name string, status int) *scripted {
	u := &scripted{name: name}
	u.status.Store(int32(status))
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		u.mu.Unlock()
		if d := time.Duration(u.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Answered-By", u.name)
		w.WriteHeader(int(u.status.Load()))
		_, _ = io.WriteString(w, `{"from":"`+u.name+`"}`)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *scripted) lastBody() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		return ""
	}
	return u.bodies[len(u.bodies)-1]
}

// fakeDiscovery serves a fixed, changeable set of instances per service.
type fakeDiscovery struct {
	mu   sync.Mutex
	sets map[string][]discovery.Instance
}

func (f *fakeDiscovery) set(service string, ins ...discovery.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sets == nil {
		f.sets = map[string][]discovery.Instance{}
	}
	f.sets[service] = ins
}

func (f *fakeDiscovery) Instances(q discovery.Query) discovery.InstanceSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	ins, ok := f.sets[q.Service]
	return discovery.InstanceSet{Instances: ins, Known: ok}
}

func (f *fakeDiscovery) Wait(_ context.Context, q discovery.Query) discovery.InstanceSet {
	return f.Instances(q)
}

func testBreaker(openFor time.Duration) policies.Breaker {
	b := benchBreaker()
	b.OpenFor, b.MaxOpenFor = openFor, 8*openFor
	return b
}

func hostOf(u *scripted) string { return strings.TrimPrefix(u.srv.URL, "http://") }
