package consultest_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

func TestStartTLS(t *testing.T) {
	// Given an agent whose HTTPS API requires client certificates
	a := consultest.StartTLS(t, consultest.TLSOptions{VerifyIncoming: true})

	pool := x509.NewCertPool()
	ca, err := os.ReadFile(a.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("CA %s: %v", a.CAFile, err)
	}
	cert, err := tls.LoadX509KeyPair(a.ClientCert, a.ClientKey)
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	get := func(url string, cfg *tls.Config) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(body), nil
	}
	leader := "/v1/status/leader"

	// Then HTTPS answers a client that trusts the CA and shows its certificate,
	// by IP and by the server name the certificate holds
	if got, err := get("https://"+a.HTTPSAddr+leader, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}); err != nil || !strings.HasPrefix(got, "200") {
		t.Errorf("with CA and client certificate: %q, %v", got, err)
	}
	cfg := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: a.ServerName}
	if got, err := get("https://"+a.HTTPSAddr+leader, cfg); err != nil || !strings.HasPrefix(got, "200") {
		t.Errorf("with server name %s: %q, %v", a.ServerName, got, err)
	}
	// And refuses one without a client certificate
	if got, err := get("https://"+a.HTTPSAddr+leader, &tls.Config{RootCAs: pool}); err == nil {
		t.Errorf("without a client certificate: %q, want a TLS error", got)
	}
	// And is not plain HTTP, while the HTTP port for assertions is
	if got, _ := get("http://"+a.HTTPSAddr+leader, nil); !strings.HasPrefix(got, "400") {
		t.Errorf("plain HTTP to the HTTPS port: %q, want 400", got)
	}
	if l, err := a.Client(t).Status().Leader(); err != nil || l == "" {
		t.Errorf("plain HTTP port: leader %q, %v", l, err)
	}
}
