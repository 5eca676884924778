package sidecar

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// A Consul instance whose service meta says sidecar_scheme = "https" is
// called over TLS, trusted through tls.ca_file and only through it.
func TestConsulInstanceMarkedHTTPSIsCalledOverVerifiedTLS(t *testing.T) {
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	consul := consultest.Start(t)
	c := consul.Client(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"secure":true}`)
	}))
	t.Cleanup(srv.Close)
	host, p := sidecartest.SplitHostPort(t, strings.TrimPrefix(srv.URL, "https://"))
	registerPassing(t, c, &api.AgentServiceRegistration{ID: "tools-1", Name: "tools", Address: host, Port: p,
		Meta: map[string]string{discovery.MetaScheme: "https"}})
	ca := writeCAFile(t, srv)
	run := func(caFile string) *Sidecar {
		cfg := consulUpstreamConfig(consul.HTTPAddr, "tools", sidecartest.Breaker(time.Minute))
		cfg.TLS.CAFile = caFile
		return runConsulSidecar(t, cfg)
	}

	// With tls.ca_file naming the instance's CA, the call goes over TLS
	e := sidecartest.NewExpect(t, "http://"+run(ca).Addr())
	e.GET("/call/tools/x").Expect().Status(http.StatusOK).Body().IsEqual(`{"secure":true}`)

	// Without it, the instance's certificate is not trusted
	e = sidecartest.NewExpect(t, "http://"+run("").Addr())
	e.GET("/call/tools/x").Expect().Status(http.StatusBadGateway).
		JSON().Object().Value("error").Object().Value("message").String().Contains("certificate")
}

// An ingress peer whose meta says sidecar_scheme = "https" is reached over
// verified TLS.
func TestIngressPeerMarkedHTTPSIsReachedOverTLS(t *testing.T) {
	peer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Answered-By", "peer")
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(peer.Close)
	host, p := sidecartest.SplitHostPort(t, strings.TrimPrefix(peer.URL, "https://"))
	d := &sidecartest.Discovery{}
	d.Set("writer", discovery.Instance{ID: "writer-2", Service: "writer", Address: host, Port: p,
		Meta: map[string]string{discovery.MetaScheme: "HTTPS"}})
	ca := writeCAFile(t, peer)
	agent := sidecartest.NewUpstream(t, "agent", http.StatusOK)
	agent.Delay.Store(int64(500 * time.Millisecond))
	cfg := testConfig()
	cfg.Agent.Port = portOf(t, agent)
	cfg.TLS.CAFile = ca
	cfg.Health.HeartbeatInterval = time.Hour
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 5 * time.Second,
		MaxConcurrent: 1}
	s, _, _ := startSidecar(t, cfg, Options{Discovery: d})
	in := sidecartest.NewExpect(t, "http://"+s.IngressAddr())
	// While the agent is busy with a task, the next goes to the peer
	done := make(chan struct{})
	go func() { defer close(done); in.POST("/task").WithText("t1").Expect() }()
	testutil.Eventually(t, "the first task at the agent", 2*time.Second, func() bool { return agent.Calls.Load() == 1 })
	in.POST("/task").WithText("t2").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("peer")
	<-done
}
