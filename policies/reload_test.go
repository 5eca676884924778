package policies

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A field added to Config (or to a block whose fields say it each) without
// a reload tag fails here: say whether a reload applies it or it needs a
// restart.
func TestEveryConfigFieldSaysHowItReloads(t *testing.T) {
	if _, err := reloadRules(); err != nil {
		t.Fatal(err)
	}
	type untagged struct {
		A int `reload:"live"`
		B int
	}
	if _, err := parseReloadRules(reflect.TypeFor[untagged](), ""); err == nil || !strings.Contains(err.Error(), "no reload tag") {
		t.Fatalf("a field without a tag: got %v", err)
	}
}

func TestRestartKeys(t *testing.T) {
	want := []string{"agent.name", "agent.id", "agent.exec", "agent.state_dir", "listen", "consul.address", "consul.token",
		"consul.sync_interval", "consul.policy_prefix", "consul.fleet_prefix",
		"consul TLS (ca_file, cert_file, key_file, tls_server_name, insecure_skip_verify)",
		"ingress.address", "ingress.max_connections", "tls", "log", "tracing"}
	if got := RestartKeys(); !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func reloadBase() *Config {
	cfg := Dev()
	cfg.Agent.Exec = &Exec{Command: []string{"agent"}, StopTimeout: time.Second}
	cfg.Ingress = &Ingress{Address: "127.0.0.1:7080", MaxConnections: 100, BodyReadTimeout: time.Minute}
	return cfg
}

// copyConfig copies the blocks a test edits, so the edit leaves base as it is.
func copyConfig(c *Config) *Config {
	out := *c
	if c.Agent.Exec != nil {
		e := *c.Agent.Exec
		out.Agent.Exec = &e
	}
	if c.Ingress != nil {
		in := *c.Ingress
		out.Ingress = &in
	}
	return &out
}

func TestKeepRestartOnly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(c *Config)
		restart []string
	}{
		{"agent.name", func(c *Config) { c.Agent.Name = "other" }, []string{"agent.name"}},
		{"agent.id", func(c *Config) { c.Agent.ID = "other-1" }, []string{"agent.id"}},
		{"exec removed", func(c *Config) { c.Agent.Exec = nil }, []string{"agent.exec"}},
		{"listen", func(c *Config) { c.Listen.Token = "another-token-0123456789" }, []string{"listen"}},
		{"consul.address", func(c *Config) { c.Consul.Address = "10.0.0.1:8500" }, []string{"consul.address"}},
		{"consul.token", func(c *Config) { c.Consul.Token = "t" }, []string{"consul.token"}},
		{"consul.sync_interval", func(c *Config) { c.Consul.SyncInterval = time.Minute }, []string{"consul.sync_interval"}},
		{"consul.policy_prefix", func(c *Config) { c.Consul.PolicyPrefix = "p/" }, []string{"consul.policy_prefix"}},
		{"consul.fleet_prefix", func(c *Config) { c.Consul.FleetPrefix = "f/" }, []string{"consul.fleet_prefix"}},
		{"consul TLS", func(c *Config) { c.Consul.CAFile, c.Consul.InsecureSkipVerify = "/ca.pem", true },
			[]string{"consul TLS (ca_file, cert_file, key_file, tls_server_name, insecure_skip_verify)"}},
		{"ingress removed", func(c *Config) { c.Ingress = nil }, []string{"ingress.address"}},
		{"ingress.address", func(c *Config) { c.Ingress.Address = "127.0.0.1:7081" }, []string{"ingress.address"}},
		{"ingress.max_connections", func(c *Config) { c.Ingress.MaxConnections = 10 }, []string{"ingress.max_connections"}},
		{"tls", func(c *Config) { c.TLS.CAFile = "/ca.pem" }, []string{"tls"}},
		{"log", func(c *Config) { c.Log.Level = "debug" }, []string{"log"}},
		{"several, in the order of Config's fields", func(c *Config) {
			c.Log.JSON, c.Listen.MaxConnections, c.Agent.ID, c.Ingress.MaxConnections = true, 10, "x", 10
		}, []string{"agent.id", "listen", "ingress.max_connections", "log"}},
		{"live settings", func(c *Config) {
			c.Agent.Tags, c.Agent.Port, c.Agent.Exec.Command = []string{"t"}, 8081, []string{"agent", "-v"}
			c.Consul.DeregisterCriticalAfter = time.Hour
			c.Health.MissedHeartbeats = 5
			c.Ingress.Token, c.Ingress.BodyReadTimeout, c.Ingress.Timeout = "ingress-token-0123456789", time.Second, time.Hour
			c.Gateway.MaxRequestBytes = 2048
			c.Sources = []string{"b.hcl"}
		}, nil},
		{"an empty list is no list", func(c *Config) { c.Listen.AllowedHosts = []string{} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := reloadBase()
			next := copyConfig(reloadBase())
			tc.edit(next)
			wantNext := copyConfig(next)
			got, restart := KeepRestartOnly(prev, next)
			if !slices.Equal(restart, tc.restart) {
				t.Fatalf("restart required for %q, want %q", restart, tc.restart)
			}
			if !reflect.DeepEqual(next, wantNext) || !reflect.DeepEqual(prev, reloadBase()) {
				t.Errorf("KeepRestartOnly changed its arguments")
			}
			if tc.restart == nil && !reflect.DeepEqual(got, next) {
				t.Errorf("got %+v, want the new configuration", got)
			}
			if tc.restart != nil {
				// The restart-only settings are the running ones
				if _, again := KeepRestartOnly(prev, got); again != nil {
					t.Errorf("the kept configuration still differs in %q", again)
				}
			}
		})
	}
}

// The listeners' limits are fixed when they open: a reload that changes
// them keeps the running values and says a restart is needed; the ingress
// token and body timeout apply at once.
func TestReloadKeepsListenerLimits(t *testing.T) {
	prev := Dev()
	prev.Ingress = &Ingress{Address: "127.0.0.1:7080", MaxConnections: 100, BodyReadTimeout: time.Minute}
	next := Dev()
	next.Listen.MaxConnections, next.Listen.AllowedHosts = 10, []string{"x.internal"}
	next.Ingress = &Ingress{Address: "127.0.0.1:7080", MaxConnections: 10, BodyReadTimeout: time.Second,
		Token: "ingress-token-0123456789"}
	got, restart := KeepRestartOnly(prev, next)
	if strings.Join(restart, ",") != "listen,ingress.max_connections" {
		t.Fatalf("restart required for %v", restart)
	}
	if got.Listen.MaxConnections != prev.Listen.MaxConnections || got.Listen.AllowedHosts != nil ||
		got.Ingress.MaxConnections != 100 || got.Ingress.BodyReadTimeout != time.Second || got.Ingress.Token != next.Ingress.Token {
		t.Fatalf("merged %+v %+v", got.Listen, *got.Ingress)
	}
	if next.Ingress.MaxConnections != 10 {
		t.Fatalf("the new configuration was changed")
	}
}

// docs/operations.md names every setting that needs a restart.
func TestOperationsDocListsRestartKeys(t *testing.T) {
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, reload, _ := strings.Cut(string(b), "\n## Reload\n")
	reload, _, _ = strings.Cut(reload, "\n## ")
	for _, key := range RestartKeys() {
		names := []string{key}
		if group, members, ok := strings.Cut(key, " ("); ok {
			names = nil
			for m := range strings.SplitSeq(strings.TrimSuffix(members, ")"), ", ") {
				names = append(names, strings.Fields(group)[0]+"."+m)
			}
		}
		for _, n := range names {
			if !strings.Contains(reload, "`"+n+"`") {
				t.Errorf("docs/operations.md, Reload: %s is not named", "`"+n+"`")
			}
		}
	}
}
