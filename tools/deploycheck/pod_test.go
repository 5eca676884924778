package deploycheck

import (
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/agent-sidecar/sidecar/policies"
)

// Names the manifests and the contract between the sidecar and the kubelet
// fix.
const (
	sidecarName   = "sidecar" // the sidecar's container
	agentName     = "agent"   // the agent's container
	probePort     = 7071      // listen.probe_address's port
	probePortName = "probes"  // the sidecar's name for it
	ingressName   = "ingress" // the sidecar's port of ingress.address
	livePath      = "/v1/agent/live"
	readyPath     = "/v1/agent/ready"
	healthPath    = "/v1/health"
	configDirFlag = "-config-dir"
)

// pod is the agent pod of the Deployment and what its checks read.
type pod struct {
	m          *manifests
	deployment *appsv1.Deployment
	spec       *corev1.PodSpec
	sidecar    *corev1.Container
	agent      *corev1.Container
	configDir  string            // the sidecar's -config-dir
	configMap  *corev1.ConfigMap // mounted there
	hcl        string            // its sidecar.hcl
	body       *hclsyntax.Body
	sidecarEnv map[string]string // the sidecar's environment as the kubelet builds it
	agentEnv   map[string]string
	cfg        *policies.Config // nil when sidecar.hcl does not load
	cfgErr     error
}

// newPod finds the pieces of the agent pod, failing the test when one is
// missing, and loads the sidecar's configuration.
func newPod(t *testing.T, m *manifests) *pod {
	t.Helper()
	if len(m.deployments) != 1 {
		t.Fatalf("want exactly 1 Deployment, found %d", len(m.deployments))
	}
	p := &pod{m: m, deployment: m.deployments[0]}
	p.spec = &p.deployment.Spec.Template.Spec
	p.sidecar = container(p.spec.InitContainers, sidecarName)
	if p.sidecar == nil {
		t.Fatalf("the pod has no init container %q: the sidecar must be a native sidecar "+
			"(initContainers with restartPolicy: Always)", sidecarName)
	}
	p.agent = container(p.spec.Containers, agentName)
	if p.agent == nil {
		t.Fatalf("the pod has no container %q", agentName)
	}
	i := slices.Index(p.sidecar.Args, configDirFlag)
	if i < 0 || i+1 >= len(p.sidecar.Args) {
		t.Fatalf("the sidecar's args %q name no %s", p.sidecar.Args, configDirFlag)
	}
	p.configDir = p.sidecar.Args[i+1]
	p.configMap = p.mountedConfigMap(t)
	var ok bool
	if p.hcl, ok = p.configMap.Data[configKey]; !ok {
		t.Fatalf("ConfigMap %q has no key %q", p.configMap.Name, configKey)
	}
	p.body = parseHCL(t, p.hcl)
	var err error
	if p.sidecarEnv, err = containerEnv(p.sidecar, m.secrets); err != nil {
		t.Fatal(err)
	}
	if p.agentEnv, err = containerEnv(p.agent, m.secrets); err != nil {
		t.Fatal(err)
	}
	p.cfg, p.cfgErr = loadConfig(t, p.hcl, p.sidecarEnv)
	return p
}

// mountedConfigMap returns the ConfigMap mounted at the sidecar's
// -config-dir.
func (p *pod) mountedConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	var volume string
	for _, vm := range p.sidecar.VolumeMounts {
		if vm.MountPath == p.configDir {
			volume = vm.Name
		}
	}
	if volume == "" {
		t.Fatalf("nothing is mounted at the sidecar's %s %s", configDirFlag, p.configDir)
	}
	for _, v := range p.spec.Volumes {
		if v.Name != volume {
			continue
		}
		if v.ConfigMap == nil {
			t.Fatalf("volume %q mounted at %s is not a ConfigMap", volume, p.configDir)
		}
		for _, cm := range p.m.configMaps {
			if cm.Name == v.ConfigMap.Name {
				return cm
			}
		}
		t.Fatalf("volume %q names ConfigMap %q, which no manifest defines", volume, v.ConfigMap.Name)
	}
	t.Fatalf("the sidecar mounts volume %q, which the pod does not define", volume)
	return nil
}

// needConfig skips a check that reads the loaded configuration when it did
// not load (the subtest that loads it has failed already).
func (p *pod) needConfig(t *testing.T) {
	t.Helper()
	if p.cfg == nil {
		t.Skip("sidecar.hcl did not load")
	}
}

// container returns the container named name, or nil.
func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// envVar returns the env entry named name of a container, or nil.
func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// fieldRef returns the downward API field an env entry comes from, or "".
func fieldRef(e *corev1.EnvVar) string {
	if e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
		return ""
	}
	return e.ValueFrom.FieldRef.FieldPath
}

// namedPort returns the container's port named name, or 0.
func namedPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// subset reports whether every label of sel is in labels with the same
// value (and sel is not empty: an empty selector selects everything).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
