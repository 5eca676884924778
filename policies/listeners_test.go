package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenerGuardRules(t *testing.T) {
	for _, tc := range []struct {
		blocks, want string
	}{
		{"listen {\n  allowed_hosts = [\"sidecar.internal\"]\n}",
			`listen.allowed_hosts: names other than the bound address and localhost are only for a control API reachable from other hosts: set allow_remote = true`},
		{"listen {\n  address = \"0.0.0.0:7070\"\n  allow_remote = true\n  token = \"0123456789abcdef0123\"\n  allowed_hosts = [\"http://sidecar.internal:7070\"]\n}",
			`listen.allowed_hosts: "http://sidecar.internal:7070" is not a host name`},
		{"listen {\n  max_connections = 0\n}", `listen.max_connections: must be at least 1, got 0`},
		{"listen {\n  body_read_timeout = \"0s\"\n}", `listen.body_read_timeout: must be greater than 0`},
		{"ingress {\n  address = \"127.0.0.1:7080\"\n  token = \"short token\"\n}",
			`ingress.token: must be at least 16 characters`},
		{"ingress {\n  address = \"127.0.0.1:7080\"\n  max_connections = -1\n}",
			`ingress.max_connections: must be at least 1, got -1`},
		{"ingress {\n  address = \"127.0.0.1:7080\"\n  body_read_timeout = \"soon\"\n}",
			`ingress.body_read_timeout: invalid duration "soon"`},
	} {
		path := filepath.Join(t.TempDir(), "s.hcl")
		src := "agent {\n  name = \"w\"\n  port = 8081\n}\n" + tc.blocks + "\n"
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.blocks, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "short token") {
			t.Errorf("the ingress token appears in an error: %v", err)
		}
	}
	// The ingress token is a secret: status shows it redacted
	path := filepath.Join(t.TempDir(), "ok.hcl")
	_ = os.WriteFile(path, []byte("agent {\n  name = \"w\"\n  port = 8081\n}\ningress {\n  address = \"127.0.0.1:7080\"\n  token = \"ingress-token-0123456789\"\n}\n"), 0o600)
	cfg, err := Load(path)
	if err != nil || cfg.Ingress.Token != "ingress-token-0123456789" || cfg.Summary()["ingress"].(map[string]any)["token"] != redacted {
		t.Fatalf("%v %+v", err, cfg)
	}
}
