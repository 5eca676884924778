package guard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
)

func TestControlAnswersOnlyToItsOwnHostNames(t *testing.T) {
	srv, b, e := startControl(t, policies.Listen{}, "")
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	// A name that is not the sidecar's (a page's own name, rebound to this
	// host) is refused before anything runs, with what to set
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.evil.example", "10.9.8.7:" + port} {
		e.GET("/v1/status").WithHost(host).Expect().Status(http.StatusMisdirectedRequest).
			JSON().Object().Value("error").Object().
			HasValue("type", ErrMisdirected).Value("message").String().Contains("listen.allowed_hosts").Contains(addr)
		e.POST("/llm/v1/chat/completions").WithHost(host).WithHeader("Content-Type", "application/json").
			WithBytes([]byte(`{"model":"m"}`)).Expect().Status(http.StatusMisdirectedRequest)
		e.GET("/call/up/x").WithHost(host).Expect().Status(http.StatusMisdirectedRequest)
	}
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("%d refused requests got through", n)
	}
	// The bound address and the loopback names pass, with or without a port
	for _, host := range []string{addr, "127.0.0.1", "localhost", "localhost:" + port, "LOCALHOST.", "[::1]:" + port, "[::1]"} {
		e.GET("/v1/health").WithHost(host).Expect().Status(http.StatusOK)
	}
}

func TestControlAnswersToItsAddressAndAllowedHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    policies.Listen
		host string
		want int
	}{
		{"the host of listen.address", policies.Listen{Address: "sidecar.lan:7070"}, "Sidecar.LAN:7070", http.StatusOK},
		{"an allowed host when remote", policies.Listen{AllowRemote: true, AllowedHosts: []string{"sidecar.internal"}},
			"sidecar.internal:7070", http.StatusOK},
		{"another host when remote", policies.Listen{AllowRemote: true, AllowedHosts: []string{"sidecar.internal"}},
			"other.internal", http.StatusMisdirectedRequest},
		{"an allowed host when not remote", policies.Listen{AllowedHosts: []string{"sidecar.internal"}},
			"sidecar.internal", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, e := startControl(t, tc.l, "")
			e.GET("/v1/status").WithHost(tc.host).Expect().Status(tc.want)
		})
	}
}

func TestControlRefusesWebPages(t *testing.T) {
	srv, b, e := startControl(t, policies.Listen{}, "")

	// A request a web page made, by its Origin or its Sec-Fetch-Site, is
	// refused: reading status, heartbeating, spending the model key, calling
	for _, h := range [][2]string{{"Origin", "https://evil.example"}, {"Origin", "null"},
		{"Origin", srv.URL}, {"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}} {
		e.GET("/v1/status").WithHeader(h[0], h[1]).Expect().Status(http.StatusForbidden).
			JSON().Object().Value("error").Object().HasValue("type", ErrForbidden)
		e.POST("/v1/heartbeat").WithHeader(h[0], h[1]).Expect().Status(http.StatusForbidden)
		e.POST("/llm/v1/chat/completions").WithHeader(h[0], h[1]).WithHeader("Content-Type", "application/json").
			WithBytes([]byte(`{"model":"m"}`)).Expect().Status(http.StatusForbidden)
		e.POST("/call/up/x").WithHeader(h[0], h[1]).WithText("x").Expect().Status(http.StatusForbidden)
	}
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("%d requests of web pages got through", n)
	}
	// An address typed by a person, or the sidecar's own origin, passes
	e.GET("/v1/status").WithHeader("Sec-Fetch-Site", "none").Expect().Status(http.StatusOK)
	e.GET("/v1/status").WithHeader("Sec-Fetch-Site", "same-origin").Expect().Status(http.StatusOK)
}

func TestJSONEndpointsTakeOnlyJSON(t *testing.T) {
	_, b, e := startControl(t, policies.Listen{}, "")
	chat := []byte(`{"model":"m","messages":[]}`)

	// The bodies a page can send without asking (text/plain, a form) are
	// refused on the gateway and the heartbeat
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/jsonx", "json"} {
		req := e.POST("/llm/v1/chat/completions").WithBytes(chat)
		hb := e.POST("/v1/heartbeat").WithBytes([]byte(`{"status":"ok"}`))
		if ct != "" {
			req, hb = req.WithHeader("Content-Type", ct), hb.WithHeader("Content-Type", ct)
		}
		req.Expect().Status(http.StatusUnsupportedMediaType).JSON().Object().Value("error").Object().
			HasValue("type", ErrUnsupportedMedia).Value("message").String().Contains("application/json")
		hb.Expect().Status(http.StatusUnsupportedMediaType)
	}
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("%d refused bodies got through", n)
	}

	// JSON in any spelling passes; so does a POST without a body, and
	// /call/ passes bodies of any type on
	for _, ct := range []string{"application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"} {
		e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", ct).WithBytes(chat).Expect().Status(http.StatusOK)
		e.POST("/v1/heartbeat").WithHeader("Content-Type", ct).WithBytes([]byte(`{"status":"ok"}`)).
			Expect().Status(http.StatusOK)
	}
	e.POST("/v1/heartbeat").Expect().Status(http.StatusOK)
	e.POST("/call/up/x").WithHeader("Content-Type", "text/plain").WithText("plain").Expect().Status(http.StatusOK)
	if n := b.calls.Load(); n != 8 {
		t.Fatalf("%d requests got through, want 8", n)
	}
}

func TestIngressTokenIsRequiredAndNotPassedOn(t *testing.T) {
	const token = "ingress-token-0123456789"
	b := &backend{}
	in := &policies.Ingress{Token: token, BodyReadTimeout: time.Minute}
	srv := httptest.NewServer(Ingress(b, func() *policies.Ingress { return in }))
	t.Cleanup(srv.Close)
	e := sidecartest.NewExpect(t, srv.URL)

	// Without the token, or with another: 401, naming the header and not
	// the token, and nothing gets through
	e.POST("/task").WithText("do it").Expect().Status(http.StatusUnauthorized).
		JSON().Object().Value("error").Object().Value("message").String().
		Contains(proxy.HeaderIngressToken).NotContains(token)
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, "ingress-token-9999999999").WithText("do it").
		Expect().Status(http.StatusUnauthorized).Body().NotContains(token)
	e.POST("/task").WithHeader(HeaderToken, token).WithText("do it").Expect().Status(http.StatusUnauthorized).
		Header("WWW-Authenticate").IsEqual(proxy.IngressChallenge)
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("%d tasks got through without the token", n)
	}
	// With it: the task gets through, without the token
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, token).WithText("do it").Expect().Status(http.StatusOK)
	if n := b.calls.Load(); n != 1 || strings.Contains(b.seen(), token) {
		t.Fatalf("%d tasks got through, credential headers %q", n, b.seen())
	}
	// Web pages are refused, token or not, and any Host is taken
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, token).WithHeader("Origin", "https://evil.example").
		WithText("do it").Expect().Status(http.StatusForbidden)
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, token).WithHost("writer.internal").WithText("do it").
		Expect().Status(http.StatusOK)
	if n := b.calls.Load(); n != 2 {
		t.Fatalf("%d tasks got through, want 2", n)
	}
}

func TestIngressWithoutTokenTakesTasksAndDropsTheHeader(t *testing.T) {
	b := &backend{}
	in := &policies.Ingress{}
	srv := httptest.NewServer(Ingress(b, func() *policies.Ingress { return in }))
	t.Cleanup(srv.Close)
	sidecartest.NewExpect(t, srv.URL).POST("/task").WithHeader(proxy.HeaderIngressToken, "stray-token-0123456789").
		WithText("do it").Expect().Status(http.StatusOK)
	if strings.Contains(b.seen(), "stray-token") {
		t.Fatalf("an ingress token was passed on: %q", b.seen())
	}
}

// Clients that declare a body and send nothing are answered, with the
// setting they ran into, and disconnected once the body read timeout has
// passed, on the control listener and the ingress alike.
func TestSlowBodiesAreCutNamingTheSetting(t *testing.T) {
	const d = 200 * time.Millisecond
	control, _, _ := startControl(t, policies.Listen{BodyReadTimeout: d}, "")
	in := &policies.Ingress{BodyReadTimeout: d}
	ingress := httptest.NewServer(Ingress(&backend{}, func() *policies.Ingress { return in }))
	t.Cleanup(ingress.Close)
	for _, tc := range []struct{ addr, path, key string }{
		{control.Listener.Addr().String(), "/v1/heartbeat", "listen.body_read_timeout"},
		{control.Listener.Addr().String(), "/call/up/x", "listen.body_read_timeout"},
		{ingress.Listener.Addr().String(), "/task", "ingress.body_read_timeout"},
	} {
		c := sidecartest.RawRequest(t, tc.addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", tc.path, 2<<20))
		// The server answers and closes; a connection still open after
		// this bound was never cut.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(bufio.NewReader(c))
		if err != nil {
			t.Fatalf("%s: the connection was not closed: %v", tc.path, err)
		}
		if want := "did not arrive within 200ms (" + tc.key + ")"; !strings.Contains(string(got), want) {
			t.Errorf("%s: got %q, want %q", tc.path, got, want)
		}
	}
}

// The body read timeout bounds the body, not the answer: an answer streamed
// well past it reaches the client whole.
func TestAnswersOutliveTheBodyReadTimeout(t *testing.T) {
	l := policies.Listen{Address: "127.0.0.1:0", BodyReadTimeout: 100 * time.Millisecond}
	srv := httptest.NewServer(Control(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := range 4 {
			fmt.Fprintf(w, "w%d ", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}), ControlOptions{Listen: func() policies.Listen { return l }, Addr: func() string { return l.Address }}))
	t.Cleanup(srv.Close)
	sidecartest.NewExpect(t, srv.URL).POST("/call/up/x").WithText("a task").Expect().Status(http.StatusOK).Body().IsEqual("w0 w1 w2 w3 ")
}

// Past max_connections a new connection waits to be accepted until one
// closes; the connections already open are served meanwhile.
func TestListenerCapsConnections(t *testing.T) {
	srv, _, _ := startControl(t, policies.Listen{MaxConnections: 2}, "")
	addr := srv.Listener.Addr().String()
	health := "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	readAnswer := func(c net.Conn, r *bufio.Reader) error {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	// Two connections, kept alive, fill the cap
	var held []net.Conn
	for range 2 {
		c := sidecartest.RawRequest(t, addr, health)
		if err := readAnswer(c, bufio.NewReader(c)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A third is not served while they are open...
	third := sidecartest.RawRequest(t, addr, health)
	answered := make(chan error, 1)
	go func() { answered <- readAnswer(third, bufio.NewReader(third)) }()
	select {
	case err := <-answered:
		t.Fatalf("a third connection was served past max_connections = 2 (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	// ...and is once one of them closes
	_ = held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("the waiting connection was not served once another closed: %v", err)
	}
}

func TestRefusalsCarryTheCallersTraceID(t *testing.T) {
	_, _, e := startControl(t, policies.Listen{Token: "control-token-0123456789"}, "")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

	// A refused request that carries a traceparent gets its trace id back
	e.GET("/v1/status").WithHeader("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01").
		Expect().Status(http.StatusUnauthorized).JSON().Object().Value("error").Object().
		HasValue("type", ErrUnauthorized).HasValue("trace_id", traceID)
	// One without has no trace_id at all
	e.GET("/v1/status").Expect().Status(http.StatusUnauthorized).JSON().Object().Value("error").Object().
		NotContainsKey("trace_id")
}
