package sidecartest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Upstream is an upstream served on loopback whose answer can be changed
// while it runs, and which counts the calls it received and records their
// bodies. It answers with Status, header X-Answered-By: Name and the body
// {"from":"<Name>"}, after Delay when one is set.
type Upstream struct {
	*httptest.Server
	Name   string
	Status atomic.Int32 // the status it answers with
	Delay  atomic.Int64 // nanoseconds to wait before answering, unless the call ends first
	Calls  atomic.Int32 // the calls received

	mu     sync.Mutex
	bodies []string
}

// NewUpstream serves an upstream named name answering status until the
// test ends.
func NewUpstream(tb testing.TB, name string, status int) *Upstream {
	tb.Helper()
	u := &Upstream{Name: name}
	u.Status.Store(int32(status))
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.Calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		u.mu.Unlock()
		if d := time.Duration(u.Delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Answered-By", u.Name)
		w.WriteHeader(int(u.Status.Load()))
		_, _ = io.WriteString(w, `{"from":"`+u.Name+`"}`)
	}))
	tb.Cleanup(u.Close)
	return u
}

// HostPort is the host:port the upstream listens on.
func (u *Upstream) HostPort() string { return strings.TrimPrefix(u.URL, "http://") }

// LastBody is the last call received, as "METHOD /path?query body", or ""
// before the first.
func (u *Upstream) LastBody() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		return ""
	}
	return u.bodies[len(u.bodies)-1]
}

// SplitHostPort is the host and port number of a host:port; it fails tb
// when hostport is not one.
func SplitHostPort(tb testing.TB, hostport string) (string, int) {
	tb.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		tb.Fatal(err)
	}
	return host, p
}
