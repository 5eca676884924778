// Package composecheck_test checks examples/compose without Docker: each
// compose file decodes strictly into the part of the Compose specification
// it uses (an unknown or misspelt key fails), every file and service it
// names exists, and its wiring matches the sidecar configurations it mounts
// (the health check asks the probe listener the sidecar opens, the agent
// heartbeats to the sidecar's control listener, the image holds the
// program agent.exec starts).
package composecheck_test

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agent-sidecar/sidecar/policies"
)

// composeFile is the part of the Compose specification the examples use.
type composeFile struct {
	Name     string              `yaml:"name"`
	Services map[string]*service `yaml:"services"`
}

type service struct {
	Image           string            `yaml:"image"`
	Build           *build            `yaml:"build"`
	Extends         *extends          `yaml:"extends"`
	Command         []string          `yaml:"command"`
	WorkingDir      string            `yaml:"working_dir"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	NetworkMode     string            `yaml:"network_mode"`
	DependsOn       []string          `yaml:"depends_on"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Healthcheck     *healthcheck      `yaml:"healthcheck"`
	Labels          map[string]string `yaml:"labels"`
	Profiles        []string          `yaml:"profiles"`
}

type extends struct {
	File    string `yaml:"file"`
	Service string `yaml:"service"`
}

type healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// build is the short form (the context) or the long one.
type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// UnmarshalYAML takes both forms of build, refusing unknown keys in the
// long one (a custom decoder does not inherit KnownFields).
func (b *build) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i].Value, n.Content[i+1].Value; k {
		case "context":
			b.Context = v
		case "dockerfile":
			b.Dockerfile = v
		default:
			return fmt.Errorf("line %d: build.%s: not a key these examples use", n.Content[i].Line, k)
		}
	}
	return nil
}

func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "compose")
}

// load decodes a compose file strictly and checks what every service names.
func load(t *testing.T, name string) *composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir(), name))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for name, s := range f.Services {
		checkService(t, name, s, f.Services)
	}
	return &f
}

// checkService checks that what a service names exists: the services it
// depends on or joins, the files it mounts, builds or extends.
func checkService(t *testing.T, name string, s *service, all map[string]*service) {
	t.Helper()
	if s.Image == "" && s.Build == nil && s.Extends == nil {
		t.Errorf("service %s: no image, build or extends", name)
	}
	if s.Restart != "" && !slices.Contains([]string{"no", "always", "on-failure", "unless-stopped"}, s.Restart) {
		t.Errorf("service %s: restart %q", name, s.Restart)
	}
	for _, d := range s.DependsOn {
		if all[d] == nil {
			t.Errorf("service %s depends on %s, which is not a service", name, d)
		}
	}
	if joined, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok && (all[joined] == nil || !slices.Contains(s.DependsOn, joined)) {
		t.Errorf("service %s joins the namespace of %s: not a service it depends on", name, joined)
	}
	for _, v := range s.Volumes {
		if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, ".") {
			if _, err := os.Stat(filepath.Join(dir(), src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	if s.Build != nil {
		df := s.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(dir(), s.Build.Context, df)); err != nil {
			t.Errorf("service %s builds with %s: %v", name, df, err)
		}
	}
	if s.Extends != nil {
		other := load(t, s.Extends.File)
		if other.Services[s.Extends.Service] == nil {
			t.Errorf("service %s extends %s of %s, which has no such service", name, s.Extends.Service, s.Extends.File)
		}
	}
	for _, d := range []string{s.StopGracePeriod, healthField(s, func(h *healthcheck) string { return h.Interval }),
		healthField(s, func(h *healthcheck) string { return h.Timeout }), healthField(s, func(h *healthcheck) string { return h.StartPeriod })} {
		if _, err := time.ParseDuration(d); d != "" && err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
}

func healthField(s *service, f func(*healthcheck) string) string {
	if s.Healthcheck == nil {
		return ""
	}
	return f(s.Healthcheck)
}

// mountedConfig loads the sidecar configuration files a service mounts
// into /etc/sidecar, as the sidecar loads them there.
func mountedConfig(t *testing.T, s *service) *policies.Config {
	t.Helper()
	var files []string
	for _, v := range s.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && strings.HasPrefix(parts[1], "/etc/sidecar/") {
			files = append(files, filepath.Join(dir(), parts[0]))
		}
	}
	if len(files) == 0 {
		t.Fatal("no sidecar configuration mounted in /etc/sidecar")
	}
	cfg, err := policies.Load(files...)
	if err != nil {
		t.Fatalf("loading %v: %v", files, err)
	}
	return cfg
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%q is not host:port", hostport)
	}
	return n
}

func published(s *service, p int) bool {
	return slices.ContainsFunc(s.Ports, func(m string) bool { return strings.HasSuffix(m, ":"+strconv.Itoa(p)) })
}

// The two-container compose file: the agent joins the sidecar's namespace,
// its health check asks the sidecar's agent liveness probe, and autoheal
// (a profile, with the Docker socket) restarts it when it is unhealthy.
func TestComposeRestartsHungAgentThroughHealthCheck(t *testing.T) {
	f := load(t, "compose.yaml")
	sidecar, agent, autoheal := f.Services["sidecar"], f.Services["agent"], f.Services["autoheal"]
	if sidecar == nil || agent == nil || autoheal == nil {
		t.Fatalf("services %v, want sidecar, agent and autoheal among them", slices.Sorted(maps.Keys(f.Services)))
	}
	cfg := mountedConfig(t, sidecar)

	if agent.NetworkMode != "service:sidecar" {
		t.Errorf("agent network_mode %q, want service:sidecar (the sidecar holds the namespace, so the agent can be restarted alone)", agent.NetworkMode)
	}
	if cfg.Agent.Exec != nil {
		t.Error("sidecar.hcl has an exec block, but the agent runs in its own container")
	}
	if !published(sidecar, cfg.Agent.Port) {
		t.Errorf("the sidecar service publishes %v, not the agent's port %d", sidecar.Ports, cfg.Agent.Port)
	}
	if got, want := agent.Environment["SIDECAR_ADDR"], "http://"+cfg.Listen.Address; got != want {
		t.Errorf("agent SIDECAR_ADDR %q, want %q (listen.address)", got, want)
	}
	if got, want := agent.Environment["AGENT_PORT"], strconv.Itoa(cfg.Agent.Port); got != want {
		t.Errorf("agent AGENT_PORT %q, want %q (agent.port)", got, want)
	}
	if got := agent.Environment["SIDECAR_AGENT_ID"]; got != cfg.Agent.ID {
		t.Errorf("agent SIDECAR_AGENT_ID %q, want %q (agent.id)", got, cfg.Agent.ID)
	}

	// The health check: the agent liveness probe on the probe listener.
	h := agent.Healthcheck
	if h == nil || len(h.Test) < 2 || h.Test[0] != "CMD" {
		t.Fatalf("agent healthcheck %+v, want a CMD test", h)
	}
	if cfg.Listen.ProbeAddress == "" {
		t.Fatal("sidecar.hcl sets no listen.probe_address for the health check")
	}
	want := fmt.Sprintf("'http://127.0.0.1:%d/v1/agent/live'", port(t, cfg.Listen.ProbeAddress))
	if cmd := strings.Join(h.Test[1:], " "); !strings.Contains(cmd, want) || !strings.HasPrefix(cmd, "python3 -c ") {
		t.Errorf("agent healthcheck %q, want python3 -c asking %s", cmd, want)
	}
	if h.Retries < 1 {
		t.Errorf("agent healthcheck retries %d", h.Retries)
	}

	// autoheal: opt-in, with the socket, watching the agent's label.
	if !slices.Equal(autoheal.Profiles, []string{"autoheal"}) {
		t.Errorf("autoheal profiles %v, want [autoheal]: it needs the Docker socket, so it must not start by default", autoheal.Profiles)
	}
	if !slices.Contains(autoheal.Volumes, "/var/run/docker.sock:/var/run/docker.sock") {
		t.Errorf("autoheal volumes %v, want the Docker socket", autoheal.Volumes)
	}
	if label := autoheal.Environment["AUTOHEAL_CONTAINER_LABEL"]; agent.Labels[label] != "true" {
		t.Errorf("agent labels %v, want %s=true (autoheal's AUTOHEAL_CONTAINER_LABEL)", agent.Labels, label)
	}
	if sidecar.Labels["autoheal"] != "" {
		t.Error("the sidecar is labelled for autoheal: restarting it cuts the agent's namespace off")
	}
}

// The one-container compose file: the sidecar image with Python runs the
// agent under agent.exec and restarts it when it is isolated.
func TestComposeExecVariantRunsAgentUnderSidecar(t *testing.T) {
	f := load(t, "compose.exec.yaml")
	writer := f.Services["writer"]
	if writer == nil || writer.Build == nil {
		t.Fatal("no service writer built from a Dockerfile")
	}
	cfg := mountedConfig(t, writer)
	if cfg.Agent.Exec == nil || !cfg.Agent.Exec.RestartOnIsolation {
		t.Fatalf("sidecar-exec.hcl: exec %+v, want an exec block that restarts an isolated agent", cfg.Agent.Exec)
	}
	if !published(writer, cfg.Agent.Port) || cfg.Agent.Exec.Env["AGENT_PORT"] != strconv.Itoa(cfg.Agent.Port) {
		t.Errorf("ports %v and AGENT_PORT %q, want the agent's port %d", writer.Ports, cfg.Agent.Exec.Env["AGENT_PORT"], cfg.Agent.Port)
	}
	if cfg.Agent.Address != "writer" {
		t.Errorf("agent.address %q, want the service's name writer", cfg.Agent.Address)
	}

	// The image holds the program exec starts, copied from a file that exists.
	df, err := os.ReadFile(filepath.Join(dir(), writer.Build.Context, writer.Build.Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	script := cfg.Agent.Exec.Command[len(cfg.Agent.Exec.Command)-1]
	m := regexp.MustCompile(`(?m)^COPY (\S+) ` + regexp.QuoteMeta(script) + `$`).FindSubmatch(df)
	if m == nil {
		t.Fatalf("%s does not COPY %s, which agent.exec runs", writer.Build.Dockerfile, script)
	}
	if _, err := os.Stat(filepath.Join(dir(), writer.Build.Context, string(m[1]))); err != nil {
		t.Errorf("%s copies %s: %v", writer.Build.Dockerfile, m[1], err)
	}
	if !regexp.MustCompile(`(?m)^FROM python:`).Match(df) || !bytes.Contains(df, []byte("/usr/local/bin/sidecar")) {
		t.Errorf("%s: want the sidecar binary on a python image", writer.Build.Dockerfile)
	}
}
