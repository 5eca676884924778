package consultest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/testbin"
)

// TLSOptions says how StartTLS sets up the agent's HTTPS listener.
type TLSOptions struct {
	// VerifyIncoming makes the agent require, on HTTPS, a client
	// certificate signed by its CA (mutual TLS).
	VerifyIncoming bool
}

// TLSAgent is a Consul dev agent that serves its HTTP API over HTTPS too,
// with certificates made for the test by the Consul binary itself: `consul
// tls ca create`, `consul tls cert create -server -dc dc1` and `consul tls
// cert create -client -dc dc1`. The plain HTTP port stays open on loopback
// for the test's own assertions (Client).
type TLSAgent struct {
	// HTTPSAddr is the agent's HTTPS API address, "127.0.0.1:PORT".
	HTTPSAddr string
	// HTTPAddr is its plain HTTP API address, "127.0.0.1:PORT".
	HTTPAddr string
	// ServerName is a name the server certificate holds besides
	// "localhost" and 127.0.0.1: "server.dc1.consul".
	ServerName string
	// CAFile is the PEM certificate of the CA that signed both
	// certificates. ServerCert and ServerKey are the agent's certificate
	// and key; ClientCert and ClientKey a client certificate and its key.
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	// VerifyIncoming is whether HTTPS requires a client certificate.
	VerifyIncoming bool

	agent      *Agent
	configFile string
}

// TLS file names as `consul tls` writes them.
const (
	tlsCAFile     = "consul-agent-ca.pem"
	tlsServerCert = "dc1-server-consul-0.pem"
	tlsServerKey  = "dc1-server-consul-0-key.pem"
	tlsClientCert = "dc1-client-consul-0.pem"
	tlsClientKey  = "dc1-client-consul-0-key.pem"
)

// StartTLS is Start with HTTPS: it makes a CA, a server certificate and a
// client certificate in a temporary directory, starts a dev agent with an
// HTTPS port on a free loopback port, waits until HTTPS answers, and stops
// the agent when the test ends. The agent cannot be restarted.
func StartTLS(t testing.TB, opts TLSOptions) *TLSAgent {
	t.Helper()
	bin := Program.Need(t)
	dir := t.TempDir()
	if err := makeCerts(bin, dir); err != nil {
		t.Fatalf("consultest: making TLS certificates with %s: %v", bin, err)
	}
	var lastErr error
	for range startTries {
		p, err := freePorts()
		if err != nil {
			t.Fatalf("consultest: picking free ports: %v", err)
		}
		httpsPort, err := freePortBesides(p)
		if err != nil {
			t.Fatalf("consultest: picking a free port: %v", err)
		}
		ta := &TLSAgent{
			HTTPSAddr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort)),
			HTTPAddr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(p.http)),
			ServerName:     "server.dc1.consul",
			CAFile:         filepath.Join(dir, tlsCAFile),
			ServerCert:     filepath.Join(dir, tlsServerCert),
			ServerKey:      filepath.Join(dir, tlsServerKey),
			ClientCert:     filepath.Join(dir, tlsClientCert),
			ClientKey:      filepath.Join(dir, tlsClientKey),
			VerifyIncoming: opts.VerifyIncoming,
			configFile:     filepath.Join(dir, "tls-"+strconv.Itoa(httpsPort)+".hcl"),
		}
		ta.agent = &Agent{HTTPAddr: ta.HTTPAddr, bin: bin, ports: p, out: testbin.NewTail(outputLimit)}
		if err := ta.writeConfig(httpsPort); err != nil {
			t.Fatalf("consultest: %v", err)
		}
		// As in Start, a port may be taken before Consul binds it; then
		// Consul exits at once and other ports are tried.
		if lastErr = ta.launch(); lastErr == nil {
			t.Cleanup(ta.Stop)
			return ta
		}
		ta.Stop()
	}
	t.Fatalf("consultest: starting consul agent -dev with HTTPS (%s) failed after %d attempts: %v",
		bin, startTries, lastErr)
	return nil
}

// Stop stops the agent; see Agent.Stop.
func (ta *TLSAgent) Stop() { ta.agent.Stop() }

// Client returns a consul/api client for the agent's plain HTTP port, for
// assertions in tests.
func (ta *TLSAgent) Client(t testing.TB) *api.Client { t.Helper(); return ta.agent.Client(t) }

// Output returns the last part of what the agent printed, for debugging.
func (ta *TLSAgent) Output() string { return ta.agent.Output() }

// makeCerts runs `consul tls` in dir to make the CA and the certificates.
func makeCerts(bin, dir string) error {
	for _, args := range [][]string{
		{"tls", "ca", "create"},
		{"tls", "cert", "create", "-server", "-dc", "dc1"},
		{"tls", "cert", "create", "-client", "-dc", "dc1"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("consul %v: %v\n%s", args, err, out)
		}
	}
	for _, name := range []string{tlsCAFile, tlsServerCert, tlsServerKey, tlsClientCert, tlsClientKey} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("consul tls did not write %s: %w", name, err)
		}
	}
	return nil
}

// writeConfig writes the agent's HTTPS settings (Consul 1.12+ `tls`
// stanza). Internal RPC keeps TLS off: a dev agent talks to itself.
func (ta *TLSAgent) writeConfig(httpsPort int) error {
	hcl := fmt.Sprintf(`ports {
  https = %d
}
tls {
  defaults {
    ca_file   = %q
    cert_file = %q
    key_file  = %q
  }
  https {
    verify_incoming = %t
  }
}
`, httpsPort, ta.CAFile, ta.ServerCert, ta.ServerKey, ta.VerifyIncoming)
	return os.WriteFile(ta.configFile, []byte(hcl), 0o600)
}

// launch starts the process with the HTTPS configuration and waits until
// both the HTTP and the HTTPS API answer. On error the process may still be
// running; the caller stops it.
func (ta *TLSAgent) launch() error {
	return ta.agent.start([]string{"-config-file=" + ta.configFile}, ta.waitHTTPS)
}

// waitHTTPS polls the HTTPS API, trusting the CA and showing the client
// certificate, until it names a leader.
func (ta *TLSAgent) waitHTTPS(exited <-chan struct{}) error {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(ta.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("reading CA %s: %v", ta.CAFile, err)
	}
	cert, err := tls.LoadX509KeyPair(ta.ClientCert, ta.ClientKey)
	if err != nil {
		return fmt.Errorf("loading the client certificate: %w", err)
	}
	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		}},
	}
	defer client.CloseIdleConnections()
	url := "https://" + ta.HTTPSAddr + "/v1/status/leader"
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		var leader string
		if lastErr = getJSON(client, url, &leader); lastErr == nil && leader != "" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("consul exited before HTTPS was ready")
		case <-time.After(pollEvery):
		}
	}
	return fmt.Errorf("consul HTTPS not ready on %s after %s: %v", ta.HTTPSAddr, readyTimeout, lastErr)
}

// freePortBesides returns a free loopback port that is none of p's.
func freePortBesides(p ports) (int, error) {
	taken := map[int]bool{p.http: true, p.serfLAN: true, p.serfWAN: true, p.server: true}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		lns = append(lns, ln)
		if port := ln.Addr().(*net.TCPAddr).Port; !taken[port] {
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}
