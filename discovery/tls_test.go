package discovery_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// clearTLSEnv makes the test independent of the developer's CONSUL_*
// variables, the TLS ones included.
func clearTLSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY",
		"CONSUL_CACERT", "CONSUL_CAPATH", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME",
	} {
		t.Setenv(k, "")
	}
}

// otherCA writes the certificate of a CA that signed nothing Consul has.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "some other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// registersOver checks that a Registrar with cfg registers svc in the
// agent behind c, seen through the agent's plain HTTP port, and reports the
// address it used.
func registersOver(t *testing.T, c *consultest.TLSAgent, cfg discovery.Config, name string) {
	t.Helper()
	svc := testService(name)
	r := startRegistrar(t, cfg, svc, nil)
	testutil.EventuallySeen(t, name+" registered over HTTPS", 10*time.Second, func() (bool, string) {
		st := r.State()
		return st.Registered, st.LastError
	})
	if got, want := r.State().ConsulAddress, "https://"+c.HTTPSAddr; got != want {
		t.Errorf("consul address: got %q, want %q", got, want)
	}
	services, err := c.Client(t).Agent().Services()
	if err != nil {
		t.Fatalf("listing services over plain HTTP: %v", err)
	}
	if _, ok := services[svc.ID]; !ok {
		t.Errorf("service %s not in the agent: %v", svc.ID, services)
	}
	r.stop()
}

// failsWith checks that a Registrar with cfg keeps failing with an error
// containing every one of want, and registers nothing.
func failsWith(t *testing.T, c *consultest.TLSAgent, cfg discovery.Config, name string, want ...string) {
	t.Helper()
	svc := testService(name)
	r := startRegistrar(t, cfg, svc, nil)
	testutil.EventuallySeen(t, name+" refused", 10*time.Second, func() (bool, string) {
		return r.State().LastError != "", "no error yet"
	})
	st := r.State()
	t.Logf("error: %s", st.LastError)
	for _, w := range want {
		if !strings.Contains(st.LastError, w) {
			t.Errorf("error does not say %q:\n%s", w, st.LastError)
		}
	}
	if st.Registered {
		t.Errorf("registered despite the error %s", st.LastError)
	}
	services, err := c.Client(t).Agent().Services()
	if err != nil {
		t.Fatalf("listing services over plain HTTP: %v", err)
	}
	if _, ok := services[svc.ID]; ok {
		t.Errorf("service %s registered despite the error", svc.ID)
	}
	r.stop()
}

// TestConsulOverHTTPS runs the sidecar's discovery client against a real
// Consul serving HTTPS (no client certificates required).
func TestConsulOverHTTPS(t *testing.T) {
	clearTLSEnv(t)
	c := consultest.StartTLS(t, consultest.TLSOptions{})
	https := "https://" + c.HTTPSAddr

	t.Run("ca_file: registers over HTTPS", func(t *testing.T) {
		registersOver(t, c, discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile}}, "ca-file")
	})

	t.Run("without the CA: certificate error with a hint", func(t *testing.T) {
		failsWith(t, c, discovery.Config{Address: https}, "no-ca",
			"x509: certificate signed by unknown authority", "consul.ca_file", "CONSUL_CACERT")
	})

	t.Run("CONSUL_CACERT without ca_file", func(t *testing.T) {
		t.Setenv("CONSUL_CACERT", c.CAFile)
		registersOver(t, c, discovery.Config{Address: https}, "env-ca")
	})

	t.Run("ca_file wins over CONSUL_CACERT", func(t *testing.T) {
		t.Setenv("CONSUL_CACERT", otherCA(t))
		registersOver(t, c, discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile}}, "file-ca")
	})

	t.Run("a wrong ca_file is not rescued by CONSUL_CACERT", func(t *testing.T) {
		t.Setenv("CONSUL_CACERT", c.CAFile)
		failsWith(t, c, discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: otherCA(t)}}, "wrong-ca",
			"certificate signed by unknown authority")
	})

	t.Run("CONSUL_HTTP_ADDR with https:// selects HTTPS", func(t *testing.T) {
		t.Setenv("CONSUL_HTTP_ADDR", https)
		t.Setenv("CONSUL_CACERT", c.CAFile)
		registersOver(t, c, discovery.Config{}, "env-addr")
	})

	t.Run("tls_server_name: a name the certificate holds", func(t *testing.T) {
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile, ServerName: c.ServerName}}
		registersOver(t, c, cfg, "server-name")
	})

	t.Run("tls_server_name: a name the certificate does not hold", func(t *testing.T) {
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile, ServerName: "consul.wrong.example"}}
		failsWith(t, c, cfg, "wrong-name", "not consul.wrong.example", "consul.tls_server_name")
	})

	t.Run("CONSUL_TLS_SERVER_NAME", func(t *testing.T) {
		t.Setenv("CONSUL_TLS_SERVER_NAME", "consul.wrong.example")
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile}}
		failsWith(t, c, cfg, "env-wrong-name", "not consul.wrong.example")
		cfg.TLS.ServerName = c.ServerName // the field wins over the variable
		registersOver(t, c, cfg, "env-name-overridden")
	})

	t.Run("insecure_skip_verify", func(t *testing.T) {
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{InsecureSkipVerify: true}}
		registersOver(t, c, cfg, "insecure")
		if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "not verified") {
			t.Errorf("warnings: got %q, want one saying the certificate is not verified", w)
		}
	})

	t.Run("CONSUL_HTTP_SSL_VERIFY=false does not turn verification off", func(t *testing.T) {
		t.Setenv("CONSUL_HTTP_SSL_VERIFY", "false")
		failsWith(t, c, discovery.Config{Address: https}, "env-insecure", "certificate signed by unknown authority")
	})

	t.Run("TLS files alone do not select HTTPS", func(t *testing.T) {
		// As with the consul CLI: host:port without a scheme is HTTP.
		cfg := discovery.Config{Address: c.HTTPSAddr, TLS: discovery.TLSConfig{CAFile: c.CAFile}}
		failsWith(t, c, cfg, "no-scheme", "HTTP request to an HTTPS server")
	})

	t.Run("CONSUL_HTTP_SSL=true selects HTTPS for host:port", func(t *testing.T) {
		t.Setenv("CONSUL_HTTP_SSL", "true")
		registersOver(t, c, discovery.Config{Address: c.HTTPSAddr, TLS: discovery.TLSConfig{CAFile: c.CAFile}}, "env-ssl")
	})

	t.Run("https to the plain HTTP port", func(t *testing.T) {
		cfg := discovery.Config{Address: "https://" + c.HTTPAddr, TLS: discovery.TLSConfig{CAFile: c.CAFile}}
		failsWith(t, c, cfg, "https-to-http", "Consul answers plain HTTP on this port")
	})

	t.Run("Client reads over HTTPS", func(t *testing.T) {
		cl, err := discovery.NewClient(discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile}})
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		if _, err := cl.AgentChecks(context.Background(), ""); err != nil {
			t.Errorf("AgentChecks: %v", err)
		}
		if cl.Address() != https {
			t.Errorf("address: got %q, want %q", cl.Address(), https)
		}
		cl, err = discovery.NewClient(discovery.Config{Address: https})
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		if _, err := cl.AgentChecks(context.Background(), ""); err == nil ||
			!strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("AgentChecks without the CA: got %v, want a certificate error", err)
		}
	})
}

// TestConsulOverMutualTLS runs the discovery client against a real Consul
// that requires client certificates on HTTPS (verify_incoming).
func TestConsulOverMutualTLS(t *testing.T) {
	clearTLSEnv(t)
	c := consultest.StartTLS(t, consultest.TLSOptions{VerifyIncoming: true})
	https := "https://" + c.HTTPSAddr

	t.Run("ca_file and a client certificate: registers", func(t *testing.T) {
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile, CertFile: c.ClientCert, KeyFile: c.ClientKey}}
		registersOver(t, c, cfg, "mtls")
	})

	t.Run("no client certificate: refused with a hint", func(t *testing.T) {
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile}}
		// The request itself may meet Consul's alert or, with TLS 1.3, a
		// reset connection; either way the error names the cause.
		failsWith(t, c, cfg, "mtls-no-cert", "consul.cert_file", "consul.key_file", "remote error: tls: certificate required")
	})

	t.Run("CONSUL_CACERT, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY", func(t *testing.T) {
		t.Setenv("CONSUL_CACERT", c.CAFile)
		t.Setenv("CONSUL_CLIENT_CERT", c.ClientCert)
		t.Setenv("CONSUL_CLIENT_KEY", c.ClientKey)
		registersOver(t, c, discovery.Config{Address: https}, "mtls-env")
	})

	t.Run("the server's own certificate is accepted as a client certificate", func(t *testing.T) {
		// Consul's server certificates are valid for client auth too.
		cfg := discovery.Config{Address: https, TLS: discovery.TLSConfig{CAFile: c.CAFile, CertFile: c.ServerCert, KeyFile: c.ServerKey}}
		registersOver(t, c, cfg, "mtls-server-cert")
	})
}

func TestTLSConfigErrors(t *testing.T) {
	clearTLSEnv(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.pem")
	tests := []struct {
		name string
		tls  discovery.TLSConfig
		env  map[string]string
		want string
	}{
		{name: "cert without key", tls: discovery.TLSConfig{CertFile: "client.pem"},
			want: `consul TLS: client certificate "client.pem" given without its key: set key_file too`},
		{name: "key without cert", tls: discovery.TLSConfig{KeyFile: "client-key.pem"},
			want: `consul TLS: client key "client-key.pem" given without its certificate: set cert_file too`},
		{name: "CONSUL_CLIENT_CERT without CONSUL_CLIENT_KEY", env: map[string]string{"CONSUL_CLIENT_CERT": "c.pem"},
			want: `consul TLS: client certificate "c.pem" ($CONSUL_CLIENT_CERT) given without its key: set $CONSUL_CLIENT_KEY too`},
		{name: "missing CA file", tls: discovery.TLSConfig{CAFile: missing},
			want: "consul client: TLS setup: Error loading CA File: open " + missing + ": no such file or directory"},
		{name: "missing CONSUL_CACERT file", env: map[string]string{"CONSUL_CACERT": missing},
			want: "consul client: TLS setup: Error loading CA File: open " + missing + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg := discovery.Config{Address: "https://127.0.0.1:8501", TLS: tt.tls}
			_, err := discovery.NewRegistrar(cfg, testService("tls"), nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("NewRegistrar: got %v\nwant %s", err, tt.want)
			}
			if _, err := discovery.NewWatcher(cfg, nil); err == nil {
				t.Errorf("NewWatcher: no error, want %s", tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	if w := (discovery.Config{}).Warnings(); len(w) != 0 {
		t.Errorf("default config: got warnings %q, want none", w)
	}
	w := discovery.Config{TLS: discovery.TLSConfig{InsecureSkipVerify: true}}.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "consul.insecure_skip_verify") {
		t.Errorf("insecure_skip_verify: got %q", w)
	}
}
