package deploycheck

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/agent-sidecar/sidecar/sidecar"
)

// agentStopAllowance is the time the pod's grace period leaves the agent's
// container to stop before the kubelet stops the sidecar (agent.exec's
// default stop_timeout; agent.py exits at once on SIGTERM).
const agentStopAllowance = 10 * time.Second

// secretLookingName matches env names whose values are secrets.
var secretLookingName = regexp.MustCompile(`(?i)(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)`)

// TestManifests decodes deploy/kubernetes strictly and checks the wiring
// of the agent pod against its sidecar.hcl and the sidecar's contract with
// the kubelet.
func TestManifests(t *testing.T) {
	m := readManifests(t, manifestDir)
	p := newPod(t, m)
	spec, sc, agent := p.spec, p.sidecar, p.agent

	t.Run("the Deployment runs 2 pods that it selects", func(t *testing.T) {
		d := p.deployment
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
		}
		if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("the selector %v does not select the pod's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
		}
	})

	t.Run("the sidecar is a native sidecar container", func(t *testing.T) {
		if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("init container %q has restartPolicy %v, want Always (else the agent never starts)", sc.Name, sc.RestartPolicy)
		}
	})

	t.Run("the agent's probes are the sidecar's agent probes on port 7071", func(t *testing.T) {
		for _, c := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{{"livenessProbe", agent.LivenessProbe, livePath}, {"readinessProbe", agent.ReadinessProbe, readyPath}} {
			if err := checkHTTPGet(c.probe, c.path, intstr.FromInt32(probePort)); err != nil {
				t.Errorf("agent %s: %v", c.kind, err)
			}
		}
	})

	t.Run("the sidecar declares port 7071 as probes and probes itself on /v1/health", func(t *testing.T) {
		if got := namedPort(sc, probePortName); got != probePort {
			t.Errorf("the sidecar's port %q is %d, want %d", probePortName, got, probePort)
		}
		for _, c := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"startupProbe", sc.StartupProbe}, {"livenessProbe", sc.LivenessProbe}, {"readinessProbe", sc.ReadinessProbe}} {
			if err := checkHTTPGet(c.probe, healthPath, intstr.FromString(probePortName)); err != nil {
				t.Errorf("sidecar %s: %v", c.kind, err)
			}
		}
	})

	t.Run("sidecar.hcl of the ConfigMap loads with the sidecar's own loader", func(t *testing.T) {
		if p.cfgErr != nil {
			t.Fatalf("policies.Load: %v", p.cfgErr)
		}
	})

	t.Run("listen.probe_address listens on port 7071 of the pod's IP", func(t *testing.T) {
		p.needConfig(t)
		addr := p.cfg.Listen.ProbeAddress
		host, _, _ := net.SplitHostPort(addr)
		if port(addr) != probePort || (host != "0.0.0.0" && host != "" && host != "::") {
			t.Errorf("listen.probe_address = %q, want port %d on every address (the kubelet probes the pod IP)", addr, probePort)
		}
	})

	t.Run("the ConfigMap is mounted read-only where the sidecar reads its configuration", func(t *testing.T) {
		for _, vm := range sc.VolumeMounts {
			if vm.MountPath == p.configDir && (!vm.ReadOnly || vm.SubPath != "") {
				t.Errorf("mount at %s: readOnly %v, subPath %q; want read-only and no subPath (a subPath mount never sees updates)",
					vm.MountPath, vm.ReadOnly, vm.SubPath)
			}
		}
		if len(p.configMap.Data) != 1 {
			t.Errorf("ConfigMap %q holds %d keys, want only %s: every *.hcl mounted there is loaded", p.configMap.Name, len(p.configMap.Data), configKey)
		}
	})

	t.Run("every env() of sidecar.hcl is given to the sidecar from the downward API or the Secret", func(t *testing.T) {
		names, err := envNames(p.body)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			t.Fatal("sidecar.hcl reads no variable with env(): the checks below would check nothing")
		}
		for _, name := range names {
			e := envVar(sc, name)
			switch {
			case e == nil:
				t.Errorf("sidecar.hcl reads env(%q), which the sidecar container does not set", name)
			case e.ValueFrom == nil || (e.ValueFrom.FieldRef == nil && e.ValueFrom.SecretKeyRef == nil):
				t.Errorf("env(%q): the sidecar sets it from neither the downward API nor a Secret", name)
			}
		}
	})

	t.Run("nothing secret is written in the ConfigMap", func(t *testing.T) {
		if found := literalSecrets(p.body); len(found) > 0 {
			t.Errorf("secrets written in sidecar.hcl instead of read with env(\"…\"): %s", strings.Join(found, "; "))
		}
		for _, s := range m.secrets {
			for k, v := range s.StringData {
				if len(v) >= 8 && strings.Contains(p.hcl, v) {
					t.Errorf("the value of Secret key %s is written in the ConfigMap", k)
				}
			}
		}
		for _, e := range agent.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("the agent's %s comes from Secret %q: keys and tokens are the sidecar's, the agent needs none",
					e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, c := range []*corev1.Container{sc, agent} {
			for _, e := range c.Env {
				if e.ValueFrom == nil && secretLookingName.MatchString(e.Name) && e.Value != "" {
					t.Errorf("container %s: %s is written in the manifest; take it from the Secret (secretKeyRef)", c.Name, e.Name)
				}
			}
		}
	})

	t.Run("agent.id is the pod's name", func(t *testing.T) {
		p.needConfig(t)
		if want := downwardValues["metadata.name"]; p.cfg.Agent.ID != want {
			t.Errorf("agent.id = %q with the pod named %q: set id = env(\"POD_NAME\") from metadata.name", p.cfg.Agent.ID, want)
		}
		if got := fieldRef(envVar(agent, "SIDECAR_AGENT_ID")); got != "metadata.name" {
			t.Errorf("the agent's SIDECAR_AGENT_ID comes from %q, want metadata.name (the same as agent.id)", got)
		}
	})

	t.Run("agent.address is the pod's IP, where the agent takes tasks on agent.port", func(t *testing.T) {
		p.needConfig(t)
		if want := downwardValues["status.podIP"]; p.cfg.Agent.Address != want {
			t.Errorf("agent.address = %q with the pod's IP %q: set address = env(\"POD_IP\") from status.podIP", p.cfg.Agent.Address, want)
		}
		if got := p.agentEnv["AGENT_HOST"]; got != "0.0.0.0" {
			t.Errorf("the agent's AGENT_HOST = %q: it must listen on the pod IP too (0.0.0.0), where the ingress reaches it", got)
		}
		if got := p.agentEnv["AGENT_PORT"]; got != strconv.Itoa(p.cfg.Agent.Port) {
			t.Errorf("the agent's AGENT_PORT = %q, agent.port = %d", got, p.cfg.Agent.Port)
		}
		if !slices.ContainsFunc(agent.Ports, func(cp corev1.ContainerPort) bool { return int(cp.ContainerPort) == p.cfg.Agent.Port }) {
			t.Errorf("the agent container does not declare agent.port %d", p.cfg.Agent.Port)
		}
	})

	t.Run("the agent heartbeats to its sidecar's control API", func(t *testing.T) {
		p.needConfig(t)
		base := "http://" + p.cfg.Listen.Address
		if got := p.agentEnv["SIDECAR_ADDR"]; got != base {
			t.Errorf("SIDECAR_ADDR = %q, want %q (listen.address)", got, base)
		}
		if got, ok := p.agentEnv["SIDECAR_HEARTBEAT_URL"]; ok {
			t.Errorf("SIDECAR_HEARTBEAT_URL = %q is set, but the agent's client reads SIDECAR_ADDR only", got)
		}
	})

	t.Run("Consul is the node's client agent at the host IP", func(t *testing.T) {
		p.needConfig(t)
		addr := envVar(sc, "CONSUL_HTTP_ADDR")
		if addr == nil || !strings.Contains(addr.Value, "$(HOST_IP)") {
			t.Fatalf("the sidecar's CONSUL_HTTP_ADDR is %+v, want \"$(HOST_IP):8500\"", addr)
		}
		host := slices.IndexFunc(sc.Env, func(e corev1.EnvVar) bool { return e.Name == "HOST_IP" })
		if host < 0 || fieldRef(&sc.Env[host]) != "status.hostIP" || host > slices.Index(sc.Env, *addr) {
			t.Errorf("HOST_IP must come from status.hostIP and be defined before CONSUL_HTTP_ADDR (else $(HOST_IP) stays as written)")
		}
		if want := downwardValues["status.hostIP"] + ":8500"; p.cfg.Consul.Address != want {
			t.Errorf("consul address = %q on a node of IP %s, want %q", p.cfg.Consul.Address, downwardValues["status.hostIP"], want)
		}
	})

	t.Run("the grace period outlasts the agent's stop and the sidecar's shutdown", func(t *testing.T) {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if spec.TerminationGracePeriodSeconds != nil {
			grace = *spec.TerminationGracePeriodSeconds
		}
		if need := sidecar.ShutdownTimeout + agentStopAllowance; time.Duration(grace)*time.Second <= need {
			t.Errorf("terminationGracePeriodSeconds = %d, want more than %s (the agent's stop, %s, then the sidecar's shutdown, %s)",
				grace, need, agentStopAllowance, sidecar.ShutdownTimeout)
		}
	})

	t.Run("the sidecar runs as non-root with a read-only root file system and no capabilities", func(t *testing.T) {
		if err := checkLockedDown(spec.SecurityContext, sc.SecurityContext); err != nil {
			t.Error(err)
		}
	})

	t.Run("the Service sends tasks to the sidecar's ingress", func(t *testing.T) {
		p.needConfig(t)
		if len(m.services) != 1 {
			t.Fatalf("want 1 Service, found %d", len(m.services))
		}
		svc := m.services[0]
		if !subset(svc.Spec.Selector, p.deployment.Spec.Template.Labels) {
			t.Errorf("Service %q selects %v, not the pod's labels %v", svc.Name, svc.Spec.Selector, p.deployment.Spec.Template.Labels)
		}
		if p.cfg.Ingress == nil {
			t.Fatal("sidecar.hcl has no ingress block")
		}
		want := port(p.cfg.Ingress.Address)
		if got := namedPort(sc, ingressName); int(got) != want {
			t.Errorf("the sidecar's port %q is %d, ingress.address is %q", ingressName, got, p.cfg.Ingress.Address)
		}
		for _, sp := range svc.Spec.Ports {
			if sp.TargetPort.Type != intstr.Int || int(sp.TargetPort.IntVal) != want {
				t.Errorf("Service port %q targets %s, want the number %d (ingress.address; a named port of a native sidecar needs Kubernetes 1.32)",
					sp.Name, sp.TargetPort.String(), want)
			}
		}
	})

	t.Run("the pod's ServiceAccount is defined and mounts no API token", func(t *testing.T) {
		i := slices.IndexFunc(m.serviceAccounts, func(sa *corev1.ServiceAccount) bool { return sa.Name == spec.ServiceAccountName })
		if spec.ServiceAccountName == "" || i < 0 {
			t.Fatalf("the pod's serviceAccountName %q is not defined by a manifest", spec.ServiceAccountName)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Error("the pod mounts a Kubernetes API token; neither the agent nor the sidecar needs one")
		}
	})

	t.Run("kustomization.yaml lists every manifest but the example Secret", func(t *testing.T) {
		if m.kustomization == nil {
			t.Fatal("no kustomization.yaml")
		}
		var want []string
		for _, f := range m.files {
			if f != "kustomization.yaml" && f != secretExampleFile {
				want = append(want, f)
			}
		}
		got := slices.Sorted(slices.Values(m.kustomization.Resources))
		if !slices.Equal(got, want) {
			t.Errorf("resources = %q, want %q", got, want)
		}
	})

	t.Run("the example Secret holds only marked placeholders", func(t *testing.T) {
		if len(m.secrets) != 1 {
			t.Fatalf("want 1 Secret (%s), found %d", secretExampleFile, len(m.secrets))
		}
		s := m.secrets[0]
		if len(s.Data) > 0 || len(s.StringData) == 0 {
			t.Errorf("Secret %q: want its placeholders in stringData, readable, not in data", s.Name)
		}
		for k, v := range s.StringData {
			if !strings.Contains(v, "REPLACE-ME") {
				t.Errorf("Secret key %s = %q is not marked REPLACE-ME", k, v)
			}
		}
	})
}

// checkHTTPGet checks that a probe is an HTTP GET of path on port, sent
// to the pod's IP (no host) over plain HTTP.
func checkHTTPGet(probe *corev1.Probe, path string, port intstr.IntOrString) error {
	if probe == nil || probe.HTTPGet == nil {
		return fmt.Errorf("want an httpGet of %s on port %s, found none", path, port.String())
	}
	g := probe.HTTPGet
	if g.Path != path || g.Port != port || g.Host != "" || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) {
		return fmt.Errorf("httpGet of path %q on port %s (host %q, scheme %q), want path %s on port %s of the pod's IP over HTTP",
			g.Path, g.Port.String(), g.Host, g.Scheme, path, port.String())
	}
	return nil
}

// checkLockedDown checks a container's effective security context (the
// container's settings over the pod's): a numeric non-root user, a
// read-only root file system, no privilege escalation, every capability
// dropped.
func checkLockedDown(podSC *corev1.PodSecurityContext, c *corev1.SecurityContext) error {
	if c == nil {
		return fmt.Errorf("the container has no securityContext")
	}
	nonRoot, user := c.RunAsNonRoot, c.RunAsUser
	if podSC != nil {
		if nonRoot == nil {
			nonRoot = podSC.RunAsNonRoot
		}
		if user == nil {
			user = podSC.RunAsUser
		}
	}
	var problems []string
	if nonRoot == nil || !*nonRoot {
		problems = append(problems, "runAsNonRoot is not true")
	}
	if user == nil || *user == 0 {
		problems = append(problems, "runAsUser is not a non-zero number (the image's user is a name the kubelet cannot check)")
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		problems = append(problems, "readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		problems = append(problems, "allowPrivilegeEscalation is not false")
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") || len(c.Capabilities.Add) > 0 {
		problems = append(problems, "capabilities do not drop ALL (and add none)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("the sidecar's security context: %s", strings.Join(problems, "; "))
	}
	return nil
}
