package discovery_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
)

// clearConsulEnv makes the test independent of the developer's CONSUL_*.
func clearConsulEnv(t *testing.T) {
	for _, k := range []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL"} {
		t.Setenv(k, "")
	}
}

func TestNewRegistrarAddress(t *testing.T) {
	tests := []struct {
		name    string
		address string
		env     map[string]string
		want    string // State().ConsulAddress
		wantErr string // part of the error; "" means no error
	}{
		{name: "default", want: "http://127.0.0.1:8500"},
		{name: "from CONSUL_HTTP_ADDR", env: map[string]string{"CONSUL_HTTP_ADDR": "10.0.0.1:8500"}, want: "http://10.0.0.1:8500"},
		{name: "config beats env", address: "10.0.0.2:8500", env: map[string]string{"CONSUL_HTTP_ADDR": "10.0.0.1:8500"}, want: "http://10.0.0.2:8500"},
		{name: "host:port", address: "consul.internal:8500", want: "http://consul.internal:8500"},
		{name: "IPv6", address: "[::1]:8500", want: "http://[::1]:8500"},
		{name: "http URL", address: "http://127.0.0.1:18500", want: "http://127.0.0.1:18500"},
		{name: "https URL", address: "https://consul.example.com:8501", want: "https://consul.example.com:8501"},
		{name: "https URL without port", address: "https://consul.example.com/", want: "https://consul.example.com"},
		{name: "env https URL", env: map[string]string{"CONSUL_HTTP_ADDR": "https://10.0.0.3:8501"}, want: "https://10.0.0.3:8501"},
		{name: "CONSUL_HTTP_SSL with host:port", address: "10.0.0.4:8501", env: map[string]string{"CONSUL_HTTP_SSL": "true"}, want: "https://10.0.0.4:8501"},
		{name: "spaces trimmed", address: " 127.0.0.1:8500 ", want: "http://127.0.0.1:8500"},
		{name: "missing port", address: "consul.internal", wantErr: "want host:port"},
		{name: "bad port", address: "127.0.0.1:99999", wantErr: "invalid port"},
		{name: "empty host", address: ":8500", wantErr: "missing host"},
		{name: "unknown scheme", address: "ftp://127.0.0.1:8500", wantErr: "scheme must be http or https"},
		{name: "URL without host", address: "http://", wantErr: "missing host"},
		{name: "URL with path", address: "http://127.0.0.1:8500/consul", wantErr: "path"},
		{name: "URL with bad port", address: "http://127.0.0.1:0", wantErr: "invalid port"},
		{name: "credentials refused and not echoed", address: "http://user:hunter2@127.0.0.1:8500", wantErr: "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r, err := discovery.NewRegistrar(discovery.Config{Address: tt.address}, testService("addr"), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q shows the password from the address", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRegistrar: %v", err)
			}
			if got := r.State().ConsulAddress; got != tt.want {
				t.Errorf("ConsulAddress = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServiceValidate(t *testing.T) {
	ok := testService("valid")
	tests := []struct {
		name    string
		change  func(*discovery.Service)
		wantErr string
	}{
		{name: "valid", change: func(*discovery.Service) {}},
		{name: "no checks", change: func(s *discovery.Service) { s.Checks = nil }},
		{name: "no ID", change: func(s *discovery.Service) { s.ID = "" }, wantErr: "service ID is empty"},
		{name: "no name", change: func(s *discovery.Service) { s.Name = "" }, wantErr: "service name is empty"},
		{name: "bad port", change: func(s *discovery.Service) { s.Port = 70000 }, wantErr: "out of range"},
		{name: "check without ID", change: func(s *discovery.Service) { s.Checks[0].ID = "" }, wantErr: "ID is empty"},
		{name: "duplicate check", change: func(s *discovery.Service) { s.Checks[1].ID = s.Checks[0].ID }, wantErr: "duplicate ID"},
		{name: "zero TTL", change: func(s *discovery.Service) { s.Checks[0].TTL = 0 }, wantErr: "TTL must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := ok
			svc.Checks = append([]discovery.Check(nil), ok.Checks...)
			tt.change(&svc)
			err := svc.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, nerr := discovery.NewRegistrar(discovery.Config{}, svc, nil); (nerr != nil) != (err != nil) {
				t.Fatalf("NewRegistrar error %v disagrees with Validate %v", nerr, err)
			}
		})
	}
}

func TestRegistrarDoesNoIOUntilRun(t *testing.T) {
	// Given a server standing in for Consul that counts requests
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	defer srv.Close()
	clearConsulEnv(t)

	// When a Registrar is built, fed check updates and updated
	svc := testService("quiet")
	r, err := discovery.NewRegistrar(discovery.Config{Address: srv.URL}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetCheck(svc.Checks[0].ID, discovery.Passing, "ok")
	r.SetCheck("no-such-check", discovery.Passing, "ignored")
	r.SetCheck(svc.Checks[0].ID, "bogus", "ignored")
	svc.Tags = append(svc.Tags, "new")
	r.Update(svc)

	// Then nothing reached the server, and the state says not registered
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests before Run, want 0", n)
	}
	st := r.State()
	if st.Registered || st.Registrations != 0 || st.ServiceID != svc.ID {
		t.Fatalf("State = %+v, want unregistered %q", st, svc.ID)
	}
}

func TestClientToken(t *testing.T) {
	tests := []struct {
		name     string
		cfgToken string
		envToken string
		want     string
	}{
		{name: "config token", cfgToken: "from-config", want: "from-config"},
		{name: "config beats env", cfgToken: "from-config", envToken: "from-env", want: "from-config"},
		{name: "env when config empty", envToken: "from-env", want: "from-env"},
		{name: "none", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a server standing in for Consul that records the token
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				got <- req.Header.Get("X-Consul-Token")
				_, _ = w.Write([]byte("{}"))
			}))
			defer srv.Close()
			clearConsulEnv(t)
			t.Setenv("CONSUL_HTTP_TOKEN", tt.envToken)

			// When the client reads the agent's checks
			c, err := discovery.NewClient(discovery.Config{Address: srv.URL, Token: tt.cfgToken})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.AgentChecks(ctx, ""); err != nil {
				t.Fatalf("AgentChecks: %v", err)
			}

			// Then the expected token was sent
			if token := <-got; token != tt.want {
				t.Errorf("X-Consul-Token = %q, want %q", token, tt.want)
			}
		})
	}
}
