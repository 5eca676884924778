package sidecar

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
)

// tokenWitness wraps u's handler to record the X-Sidecar-Ingress-Token
// header of every request it receives.
func tokenWitness(u *sidecartest.Upstream) *[]string {
	var (
		mu   sync.Mutex
		seen []string
	)
	inner := u.Config.Handler
	u.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get(proxy.HeaderIngressToken))
		mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	return &seen
}

// runLoggedSidecar runs a sidecar against the real Consul, logging at
// debug level into logs.
func runLoggedSidecar(t *testing.T, cfg *policies.Config, logs *testutil.SyncBuffer) *Sidecar {
	t.Helper()
	return runSidecarLoggingTo(t, cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs}))
}

// Writers whose ingress requires a token, and a dispatcher that reaches
// them through Consul: the dispatcher sends the token to the instances
// that are sidecars' ingresses, and to no one else; an upstream without
// the token (or with a wrong one) gets an error that says what to set.
func TestDispatcherSendsTheIngressTokenToSidecarIngresses(t *testing.T) {
	const fleetToken = "fleet-ingress-token-0123456789"
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	consul := consultest.Start(t)
	logs := &testutil.SyncBuffer{}
	base := func(name, id string, agent *sidecartest.Upstream) *policies.Config {
		cfg := testConfig()
		cfg.Agent.Name, cfg.Agent.ID = name, id
		cfg.Agent.Port = portOf(t, agent)
		cfg.Consul.Address, cfg.Consul.Token = consul.HTTPAddr, ""
		cfg.Consul.DeregisterCriticalAfter = time.Minute
		cfg.Health = policies.Health{HeartbeatInterval: time.Hour, MissedHeartbeats: 1, Grace: time.Minute}
		cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
		cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 5 * time.Second,
			MaxConnections: 100, BodyReadTimeout: time.Minute}
		return cfg
	}

	// Given two writers whose ingresses require the fleet's token
	agent1, agent2 := sidecartest.NewUpstream(t, "agent-1", http.StatusOK), sidecartest.NewUpstream(t, "agent-2", http.StatusOK)
	seen1, seen2 := tokenWitness(agent1), tokenWitness(agent2)
	var writers []*Sidecar
	for i, agent := range []*sidecartest.Upstream{agent1, agent2} {
		cfg := base("writer", "writer-"+strconv.Itoa(i+1), agent)
		cfg.Ingress.Token = fleetToken
		s := runLoggedSidecar(t, cfg, logs)
		s.Beat(health.Heartbeat{})
		writers = append(writers, s)
	}
	// and, in the same Consul service, an instance that is no sidecar
	plain := sidecartest.NewUpstream(t, "plain", http.StatusOK)
	seenPlain := tokenWitness(plain)
	host, p := sidecartest.SplitHostPort(t, plain.HostPort())
	registerPassing(t, consul.Client(t), &api.AgentServiceRegistration{ID: "writer-plain",
		Name: "writer", Tags: []string{"plain"}, Address: host, Port: p})

	// and dispatchers whose own agent is down, with upstreams to the
	// writers with the token, without it and with a wrong one, and to a
	// static URL that is no sidecar
	writer1URL := "http://" + writers[0].IngressAddr()
	upstream := func(name, service, url, token string, tags ...string) policies.Upstream {
		return policies.Upstream{Name: name, Service: service, URL: url, Tags: tags, Breaker: "strict",
			Timeout: 5 * time.Second, Retries: 1, Balance: policies.BalanceRoundRobin, IngressToken: token}
	}
	ups := map[string]policies.Upstream{
		"writers":            upstream("writers", "writer", "", fleetToken),
		"writers-notoken":    upstream("writers-notoken", "writer", "", "", agentTag),
		"writers-wrong":      upstream("writers-wrong", "writer", "", "wrong-ingress-token-0123456", agentTag),
		"writer-url":         upstream("writer-url", "", writer1URL, fleetToken),
		"writer-url-notoken": upstream("writer-url-notoken", "", writer1URL, ""),
		"plain":              upstream("plain", "", plain.URL, ""),
	}
	down := sidecartest.NewUpstream(t, "down", http.StatusOK)
	down.Close()
	dispatcher := func(id string, fallback string) *Sidecar {
		cfg := base("dispatch", id, down)
		cfg.Upstreams = ups
		// A breaker that a single 401 would open: a refused token says
		// nothing about the instance's health, and must not open it.
		strict := sidecartest.Breaker(time.Minute)
		strict.Name, strict.ConsecutiveFailures, strict.FailureStatuses = "strict", 1, []int{http.StatusUnauthorized}
		cfg.Breakers["strict"] = strict
		cfg.Ingress.Fallback = []string{fallback}
		return runLoggedSidecar(t, cfg, logs)
	}
	withToken, withoutToken := dispatcher("dispatch-1", "writers"), dispatcher("dispatch-2", "writers-notoken")
	call := sidecartest.NewExpect(t, "http://"+withToken.Addr())

	// When tasks are sent through the dispatcher's /call/, then the two
	// writers and the plain instance all answer them
	answered := map[string]bool{}
	testutil.Eventually(t, "both writers and the plain instance answering", 20*time.Second, func() bool {
		r := call.POST("/call/writers/task").WithText("t").Expect()
		switch r.Raw().StatusCode {
		case http.StatusOK:
			answered[r.Raw().Header.Get("X-Answered-By")] = true
		case http.StatusServiceUnavailable: // Consul has not seen them pass yet
		default:
			t.Fatalf("a call through the dispatcher: %d %s", r.Raw().StatusCode, r.Body().Raw())
		}
		return answered["agent-1"] && answered["agent-2"] && answered["plain"]
	})
	// And the token reached the ingresses only: the plain instance never
	// saw it, and the writers' agents never did either
	for name, seen := range map[string]*[]string{"plain": seenPlain, "agent-1": seen1, "agent-2": seen2} {
		for _, v := range *seen {
			if v != "" {
				t.Fatalf("%s received an ingress token header", name)
			}
		}
	}
	// And a static URL that is a writer's ingress takes the token when its
	// block gives it one; the one that is no sidecar gets none
	call.POST("/call/writer-url/task").WithText("t").Expect().Status(http.StatusOK).
		Header("X-Answered-By").IsEqual("agent-1")
	call.POST("/call/plain/task").WithText("t").Expect().Status(http.StatusOK)
	if got := (*seenPlain)[len(*seenPlain)-1]; got != "" {
		t.Fatal("the static upstream that is no sidecar received the token")
	}

	// When an upstream reaches the writers without the token, or with a
	// wrong one, then the call fails with what to set, and no agent is
	// called
	calls := agent1.Calls.Load() + agent2.Calls.Load()
	refused := func(path, want string) {
		t.Helper()
		obj := call.POST(path).WithText("t").Expect().Status(http.StatusBadGateway).JSON().Object().
			Value("error").Object()
		obj.Value("type").IsEqual("ingress_token_refused")
		obj.Value("message").String().Contains(want)
	}
	for i := 0; i < 3; i++ {
		refused("/call/writers-notoken/task", `set ingress_token in this sidecar's upstream "writers-notoken" block`)
		refused("/call/writers-wrong/task", `refused the token of this sidecar's upstream "writers-wrong" ingress_token`)
	}
	refused("/call/writer-url-notoken/task", `set ingress_token in this sidecar's upstream "writer-url-notoken" block`)
	if agent1.Calls.Load()+agent2.Calls.Load() != calls {
		t.Fatal("a refused call reached a writer's agent")
	}

	// When a task reaches a dispatcher's ingress and its agent is down,
	// then the fallback upstream with the token takes it
	sidecartest.NewExpect(t, "http://"+withToken.IngressAddr()).POST("/task").WithText("t").Expect().Status(http.StatusOK).
		Header(proxy.HeaderUpstream).IsEqual("writers")
	// and a fallback without it says what to set
	obj := sidecartest.NewExpect(t, "http://"+withoutToken.IngressAddr()).POST("/task").WithText("t").Expect().
		Status(http.StatusBadGateway).JSON().Object().Value("error").Object()
	obj.Value("type").IsEqual("ingress_token_refused")
	obj.Value("message").String().Contains(`set ingress_token in this sidecar's upstream "writers-notoken" block`)

	// The token appears in no status, answer or log
	for _, s := range append(writers, withToken, withoutToken) {
		status, _ := json.Marshal(s.Status())
		if strings.Contains(string(status), fleetToken) || strings.Contains(string(status), "wrong-ingress-token") {
			t.Fatalf("status of %s shows a token", s.Config().Agent.ID)
		}
	}
	if got := withToken.Status().Config["upstreams"].(map[string]any)["writers"].(map[string]any)["ingress_token"]; got != "<redacted>" {
		t.Fatalf("status shows ingress_token as %v", got)
	}
	out := logs.String()
	if strings.Contains(out, fleetToken) || strings.Contains(out, "wrong-ingress-token") {
		t.Fatal("a log line shows a token")
	}
	if !strings.Contains(out, "refused the call for its ingress token") {
		t.Fatalf("no log line says that an ingress refused the token:\n%s", out)
	}
}

// A sidecar hands a task to a peer with its ingress.token only when the
// peer's registration is a sidecar's ingress; a peer's ingress that refuses
// the token gets an answer that says what to set.
func TestPeersGetTheTokenOnlyAtAnIngress(t *testing.T) {
	const fleetToken = "fleet-ingress-token-0123"
	instance := func(id, hostPort string, ingress bool) discovery.Instance {
		host, port, _ := net.SplitHostPort(hostPort)
		p, _ := strconv.Atoi(port)
		in := discovery.Instance{ID: id, Service: "writer", Address: host, Port: p}
		if ingress {
			in.Meta = map[string]string{policies.MetaAgentPort: "8081"}
		}
		return in
	}
	down := sidecartest.NewUpstream(t, "down", http.StatusOK)
	down.Close()
	task := func(base string) *httpexpect.Response {
		return sidecartest.NewExpect(t, base).POST("/task").WithHeader(proxy.HeaderIngressToken, fleetToken).WithText("t").Expect()
	}

	// Given a peer registered by a sidecar without an ingress (its port is
	// its agent's), then a task reaches that agent without the token
	bare := sidecartest.NewUpstream(t, "bare-agent", http.StatusOK)
	seen := tokenWitness(bare)
	peers := &sidecartest.Discovery{}
	peers.Set("writer", instance("writer-2", bare.HostPort(), false))
	_, baseA := startIngress(t, down, func(cfg *policies.Config) { cfg.Ingress.Token = fleetToken }, peers)
	task(baseA).Status(http.StatusOK).Header("X-Answered-By").IsEqual("bare-agent")
	if len(*seen) != 1 || (*seen)[0] != "" {
		t.Fatalf("the peer's agent received token headers %q", *seen)
	}

	// Given a peer's ingress that requires a token
	agentC := sidecartest.NewUpstream(t, "agent-c", http.StatusOK)
	sc, _ := startIngress(t, agentC, func(cfg *policies.Config) { cfg.Ingress.Token = fleetToken; cfg.Agent.ID = "writer-3" })
	withIngress := &sidecartest.Discovery{}
	withIngress.Set("writer", instance("writer-3", sc.IngressAddr(), true))
	// (no subtests: the sidecars of this test run on while they would end)
	for _, tc := range []struct{ token, want string }{
		{"", `peer writer-3 requires an ingress token and this sidecar's ingress.token is not set`},
		{"other-ingress-token-0123", `peer writer-3 refused this sidecar's ingress.token`},
	} {
		_, base := startIngress(t, down, func(cfg *policies.Config) { cfg.Ingress.Token = tc.token }, withIngress)
		req := sidecartest.NewExpect(t, base).POST("/task").WithText("t")
		if tc.token != "" {
			req = req.WithHeader(proxy.HeaderIngressToken, tc.token)
		}
		obj := req.Expect().Status(http.StatusBadGateway).JSON().Object().Value("error").Object()
		obj.Value("type").IsEqual("ingress_token_refused")
		obj.Value("message").String().Contains(tc.want).NotContains(fleetToken)
		if agentC.Calls.Load() != 0 {
			t.Fatalf("ingress.token %q: a refused task reached the peer's agent", tc.token)
		}
	}
}
