package policies

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test certificates of testdata/full.hcl: a CA and a client
// certificate it signed, with its key.
const (
	testCA         = "testdata/consul-tls/ca.pem"
	testClientCert = "testdata/consul-tls/client.pem"
	testClientKey  = "testdata/consul-tls/client-key.pem"
)

// writeConsulConfig writes a configuration with an agent block and a
// consul block holding body (one attribute per line, from line 5 on), and
// returns its path.
func writeConsulConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidecar.hcl")
	src := "agent {\n  name = \"writer\"\n}\nconsul {\n" + body + "}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFile writes data to name in a new temporary directory.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// otherKeyPair writes a self-signed certificate and its key, unrelated to
// the test CA, and returns their paths.
func otherKeyPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	return keyPairUntil(t, time.Now().Add(time.Hour))
}

// keyPairUntil is otherKeyPair with a certificate valid until notAfter.
func keyPairUntil(t *testing.T, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "other"},
		NotBefore:    notAfter.Add(-48 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// keyMaterial returns the base64 lines of a PEM key file, which must never
// appear in a message or in status.
func keyMaterial(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestConsulTLSSettings(t *testing.T) {
	clearConsulEnv(t)
	path := writeConsulConfig(t, `  address = "https://127.0.0.1:8501"
  ca_file = "`+testCA+`"
  cert_file = "`+testClientCert+`"
  key_file = "`+testClientKey+`"
  tls_server_name = "server.dc1.consul"
`)

	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	c := cfg.Consul
	if c.CAFile != testCA || c.CertFile != testClientCert || c.KeyFile != testClientKey ||
		c.TLSServerName != "server.dc1.consul" || c.InsecureSkipVerify {
		t.Errorf("consul: got %+v", c)
	}
	// Status shows every setting, the key file by path only.
	out, err := json.Marshal(cfg.Summary())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Consul map[string]any `json:"consul"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ca_file": testCA, "cert_file": testClientCert, "key_file": testClientKey,
		"tls_server_name": "server.dc1.consul", "insecure_skip_verify": false}
	for k, v := range want {
		if got.Consul[k] != v {
			t.Errorf("summary consul.%s: got %#v, want %#v", k, got.Consul[k], v)
		}
	}
	for _, line := range keyMaterial(t, testClientKey) {
		if strings.Contains(string(out), line) {
			t.Fatalf("summary contains the private key:\n%s", out)
		}
	}
}

func TestConsulTLSDefaults(t *testing.T) {
	clearConsulEnv(t)
	cfg, err := Load("testdata/minimal.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c := cfg.Consul
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.TLSServerName != "" || c.InsecureSkipVerify {
		t.Errorf("got %+v, want no TLS settings (and verification on)", c)
	}
}

func TestConsulTLSEnvironment(t *testing.T) {
	otherCert, otherKey := otherKeyPair(t)
	env := map[string]string{
		envConsulCACert:        otherCert, // any readable PEM certificate will do as a CA bundle
		envConsulClientCert:    otherCert,
		envConsulClientKey:     otherKey,
		envConsulTLSServerName: "consul.env.example",
	}
	tests := []struct {
		name                string
		body                string
		wantCA, wantCert    string
		wantKey, wantServer string
	}{
		{
			name:   "file sets nothing: the variables apply",
			wantCA: otherCert, wantCert: otherCert, wantKey: otherKey, wantServer: "consul.env.example",
		},
		{
			name: "file values win over the variables",
			body: `  ca_file = "` + testCA + `"
  cert_file = "` + testClientCert + `"
  key_file = "` + testClientKey + `"
  tls_server_name = "server.dc1.consul"
`,
			wantCA: testCA, wantCert: testClientCert, wantKey: testClientKey, wantServer: "server.dc1.consul",
		},
		{
			name: "empty strings count as unset",
			body: `  ca_file = ""
  cert_file = ""
  key_file = ""
  tls_server_name = ""
`,
			wantCA: otherCert, wantCert: otherCert, wantKey: otherKey, wantServer: "consul.env.example",
		},
		{
			name:   "one key set, the other variables still apply",
			body:   `  ca_file = "` + testCA + `"` + "\n",
			wantCA: testCA, wantCert: otherCert, wantKey: otherKey, wantServer: "consul.env.example",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			cfg, err := Load(writeConsulConfig(t, tt.body))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			c := cfg.Consul
			if c.CAFile != tt.wantCA || c.CertFile != tt.wantCert || c.KeyFile != tt.wantKey || c.TLSServerName != tt.wantServer {
				t.Errorf("got ca %q cert %q key %q server %q\nwant ca %q cert %q key %q server %q",
					c.CAFile, c.CertFile, c.KeyFile, c.TLSServerName, tt.wantCA, tt.wantCert, tt.wantKey, tt.wantServer)
			}
		})
	}

	t.Run("-dev honours the variables", func(t *testing.T) {
		clearConsulEnv(t)
		for k, v := range env {
			t.Setenv(k, v)
		}
		c := Dev().Consul
		if c.CAFile != otherCert || c.CertFile != otherCert || c.KeyFile != otherKey || c.TLSServerName != "consul.env.example" {
			t.Errorf("got %+v", c)
		}
	})
}

func TestConsulTLSErrors(t *testing.T) {
	otherCert, otherKey := otherKeyPair(t)
	expiredCert, expiredKey := keyPairUntil(t, time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	notPEM := writeFile(t, "ca.txt", "just some text\n")
	publicKeyOnly := writeFile(t, "pub.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
	encryptedKey := writeFile(t, "enc-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")})))
	missing := filepath.Join(t.TempDir(), "nope.pem")
	dir := t.TempDir()

	tests := []struct {
		name string
		body string            // consul block lines, from line 5
		env  map[string]string // CONSUL_* variables
		want []string          // the error, each a line after the file name (or whole, for env values)
	}{
		{
			name: "missing ca_file",
			body: `  ca_file = "` + missing + `"` + "\n",
			want: []string{`:5:3: consul.ca_file: cannot read "` + missing + `": no such file or directory`},
		},
		{
			name: "ca_file is not PEM",
			body: `  ca_file = "` + notPEM + `"` + "\n",
			want: []string{`:5:3: consul.ca_file: "` + notPEM + `" holds no PEM certificate: give a bundle of CA certificates`},
		},
		{
			name: "cert without key",
			body: `  address = "https://127.0.0.1:8501"` + "\n" + `  cert_file = "` + testClientCert + `"` + "\n",
			want: []string{`:6:3: consul.cert_file: cert_file is set but key_file is not: a client certificate needs its ` +
				`private key; set key_file too (or remove cert_file)`},
		},
		{
			name: "key without cert",
			body: `  key_file = "` + testClientKey + `"` + "\n",
			want: []string{`:5:3: consul.key_file: key_file is set but cert_file is not: set cert_file to the client ` +
				`certificate of this key (or remove key_file)`},
		},
		{
			name: "a file's certificate is not paired with the key of the environment",
			body: `  cert_file = "` + testClientCert + `"` + "\n",
			env:  map[string]string{envConsulClientKey: testClientKey},
			want: []string{`:5:3: consul.cert_file: cert_file is set but key_file is not`},
		},
		{
			name: "missing cert_file",
			body: `  cert_file = "` + missing + `"` + "\n" + `  key_file = "` + testClientKey + `"` + "\n",
			want: []string{`:5:3: consul.cert_file: cannot read "` + missing + `": no such file or directory: ` +
				`give the client certificate as a PEM file`},
		},
		{
			name: "unreadable key_file",
			body: `  cert_file = "` + testClientCert + `"` + "\n" + `  key_file = "` + dir + `"` + "\n",
			want: []string{`:6:3: consul.key_file: cannot read "` + dir + `": is a directory`},
		},
		{
			name: "cert_file is not PEM",
			body: `  cert_file = "` + notPEM + `"` + "\n" + `  key_file = "` + testClientKey + `"` + "\n",
			want: []string{`:5:3: consul.cert_file: "` + notPEM + `" is not a PEM file: give the client certificate in ` +
				`PEM (-----BEGIN CERTIFICATE-----)`},
		},
		{
			name: "key_file is not PEM",
			body: `  cert_file = "` + testClientCert + `"` + "\n" + `  key_file = "` + notPEM + `"` + "\n",
			want: []string{`:6:3: consul.key_file: "` + notPEM + `" is not a PEM file: give the client certificate's ` +
				`private key in PEM`},
		},
		{
			name: "PEM of another kind",
			body: `  cert_file = "` + publicKeyOnly + `"` + "\n" + `  key_file = "` + testClientKey + `"` + "\n",
			want: []string{`:5:3: consul.cert_file: "` + publicKeyOnly + `" holds no certificate or private key ` +
				`(only PEM blocks of type PUBLIC KEY)`},
		},
		{
			name: "cert and key swapped",
			body: `  cert_file = "` + testClientKey + `"` + "\n" + `  key_file = "` + testClientCert + `"` + "\n",
			want: []string{
				`:5:3: consul.cert_file: "` + testClientKey + `" holds a private key, not a certificate: cert_file takes ` +
					`the client certificate (-----BEGIN CERTIFICATE-----); were cert_file and key_file swapped?`,
				`:6:3: consul.key_file: "` + testClientCert + `" holds a certificate, not a private key`,
			},
		},
		{
			name: "encrypted key",
			body: `  cert_file = "` + testClientCert + `"` + "\n" + `  key_file = "` + encryptedKey + `"` + "\n",
			want: []string{`:6:3: consul.key_file: "` + encryptedKey + `" holds an encrypted private key`},
		},
		{
			name: "key of another certificate",
			body: `  cert_file = "` + testClientCert + `"` + "\n" + `  key_file = "` + otherKey + `"` + "\n",
			want: []string{`:6:3: consul.key_file: "` + otherKey + `" cannot be used with cert_file: it is not the key ` +
				`of the certificate in cert_file "` + testClientCert + `": give the key the certificate was issued with`},
		},
		{
			name: "expired client certificate",
			body: `  cert_file = "` + expiredCert + `"` + "\n" + `  key_file = "` + expiredKey + `"` + "\n",
			want: []string{`:5:3: consul.cert_file: the certificate in "` + expiredCert + `" expired on 2024-03-01: renew it`},
		},
		{
			name: "server name with a scheme",
			body: `  tls_server_name = "https://server.dc1.consul"` + "\n",
			want: []string{`:5:3: consul.tls_server_name: "https://server.dc1.consul" is not a host name`},
		},
		{
			name: "every problem is reported",
			body: `  ca_file = "` + missing + `"` + "\n" + `  cert_file = "` + otherCert + `"` + "\n",
			want: []string{`:5:3: consul.ca_file: cannot read`, `:6:3: consul.cert_file: cert_file is set but key_file is not`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := writeConsulConfig(t, tt.body)

			_, err := Load(path)

			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				if i < len(lines) && !strings.HasPrefix(lines[i], path+want) {
					t.Errorf("error %d:\ngot  %s\nwant %s%s…", i+1, lines[i], path, want)
				}
			}
			for _, secret := range append(keyMaterial(t, testClientKey), keyMaterial(t, otherKey)...) {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows a private key:\n%s", err)
				}
			}
		})
	}
}

func TestConsulTLSErrorsFromEnvironment(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "CONSUL_CACERT names a missing file",
			env:  map[string]string{envConsulCACert: missing},
			want: `consul.ca_file: cannot read "` + missing + `": no such file or directory (the value comes from the ` +
				`CONSUL_CACERT environment variable)`,
		},
		{
			name: "CONSUL_CLIENT_CERT without CONSUL_CLIENT_KEY",
			env:  map[string]string{envConsulClientCert: testClientCert},
			want: `consul.cert_file: a client certificate needs its private key: set CONSUL_CLIENT_KEY too (or unset ` +
				`CONSUL_CLIENT_CERT) (the value comes from the CONSUL_CLIENT_CERT environment variable)`,
		},
		{
			name: "CONSUL_CLIENT_KEY without CONSUL_CLIENT_CERT",
			env:  map[string]string{envConsulClientKey: testClientKey},
			want: `consul.key_file: a client key needs its certificate: set CONSUL_CLIENT_CERT too (or unset ` +
				`CONSUL_CLIENT_KEY) (the value comes from the CONSUL_CLIENT_KEY environment variable)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load("testdata/minimal.hcl")
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
