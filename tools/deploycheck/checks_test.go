package deploycheck

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestDecodeIsStrict shows that a mistake kubectl's strict field
// validation would refuse fails the manifest test too, rather than being
// dropped silently as a plain decode would.
func TestDecodeIsStrict(t *testing.T) {
	const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: writer\n"
	for _, tc := range []struct {
		name, doc, wantErr string
	}{
		{"a valid document", deployment + "spec:\n  replicas: 2\n", ""},
		{"a misspelled field", deployment + "spec:\n  replica: 2\n", `unknown field "spec.replica"`},
		{"a field in the wrong case", deployment + "spec:\n  Replicas: 2\n", `the field is spelled "replicas"`},
		{"a misspelled field deep in a probe",
			deployment + "spec:\n  template:\n    spec:\n      containers:\n        - name: agent\n          livenessProbe:\n            httpGet:\n              path: /v1/agent/live\n              prot: 7071\n",
			`unknown field "spec.template.spec.containers[0].livenessProbe.httpGet.prot"`},
		{"a field given twice", deployment + "spec:\n  replicas: 2\n  replicas: 3\n", "already set"},
		{"a kind the test does not know", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n", `kind "Pod" is not one the test knows`},
		{"a Kustomization with a field the base does not use", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\n", `unknown field "namePrefix"`},
		{"two documents, one comment-only", "# a comment\n---\n" + deployment + "---\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (&manifests{}).decodeFile("test.yaml", []byte(tc.doc))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestLiteralSecretsFound shows that a key or token written into
// sidecar.hcl is caught, and a value read with env() is not.
func TestLiteralSecretsFound(t *testing.T) {
	for _, tc := range []struct {
		name, hcl string
		want      []string
	}{
		{"read with env()", "model \"m\" {\n  api_key = env(\"K\")\n}\nnotify \"ops\" {\n  webhook = env(\"U\")\n  headers = { Authorization = env(\"H\") }\n}\n", nil},
		{"an api_key written in", "model \"m\" {\n  api_key = \"sk-live-123\"\n}\n", []string{"model.m.api_key"}},
		{"a token in a template", "ingress {\n  token = \"${env(\"T\")}x\"\n}\n", []string{"ingress.token"}},
		{"a header written in", "notify \"ops\" {\n  webhook = env(\"U\")\n  headers = { Authorization = \"Bearer abc\" }\n}\n", []string{"notify.ops.headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range literalSecrets(parseHCL(t, tc.hcl)) {
				key, _, _ := strings.Cut(f, " ")
				got = append(got, key)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEnvNames shows that every env() call is found, in nested blocks and
// templates too, and that a name the test cannot read is an error.
func TestEnvNames(t *testing.T) {
	names, err := envNames(parseHCL(t, "agent {\n  id = env(\"A\")\n}\nx {\n  y {\n    z = \"${env(\"B\")}-${env(\"A\")}\"\n  }\n}\n"))
	if err != nil || !slices.Equal(names, []string{"A", "B"}) {
		t.Errorf("got %q, %v; want [A B], no error", names, err)
	}
	if _, err := envNames(parseHCL(t, "a {\n  b = env(\"X${env(\"Y\")}\")\n}\n")); err == nil {
		t.Error("env() of a computed name: got no error")
	}
}

// TestExpandKubeRefs checks $(VAR) expansion as the kubelet does it.
func TestExpandKubeRefs(t *testing.T) {
	defined := map[string]string{"HOST_IP": "198.51.100.4"}
	for _, tc := range []struct{ in, want string }{
		{"$(HOST_IP):8500", "198.51.100.4:8500"},
		{"$(UNDEFINED):8500", "$(UNDEFINED):8500"},
		{"$$(HOST_IP)", "$(HOST_IP)"},
		{"plain", "plain"},
	} {
		if got := expandKubeRefs(tc.in, defined); got != tc.want {
			t.Errorf("expandKubeRefs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestProbeChecks shows the probe check refusing what the kubelet would
// get wrong: a named port on the agent's container (not its own), another
// path, a host.
func TestProbeChecks(t *testing.T) {
	probe := func(path string, port intstr.IntOrString, host string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, Host: host}}}
	}
	for _, tc := range []struct {
		name  string
		probe *corev1.Probe
		ok    bool
	}{
		{"the contract's probe", probe(livePath, intstr.FromInt32(probePort), ""), true},
		{"a named port", probe(livePath, intstr.FromString(probePortName), ""), false},
		{"the control port", probe(livePath, intstr.FromInt32(7070), ""), false},
		{"the sidecar's own health", probe(healthPath, intstr.FromInt32(probePort), ""), false},
		{"a host", probe(livePath, intstr.FromInt32(probePort), "127.0.0.1"), false},
		{"no probe", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkHTTPGet(tc.probe, livePath, intstr.FromInt32(probePort)); (err == nil) != tc.ok {
				t.Errorf("got %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

// TestLockedDownChecks shows the security check refusing a container that
// could write its root file system, run as root or keep capabilities.
func TestLockedDownChecks(t *testing.T) {
	yes, no, uid, root := true, false, int64(65532), int64(0)
	good := func() *corev1.SecurityContext {
		return &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, ReadOnlyRootFilesystem: &yes,
			AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*corev1.SecurityContext)
		want   string
	}{
		{"locked down", func(*corev1.SecurityContext) {}, ""},
		{"writable root", func(c *corev1.SecurityContext) { c.ReadOnlyRootFilesystem = &no }, "readOnlyRootFilesystem"},
		{"root", func(c *corev1.SecurityContext) { c.RunAsUser = &root }, "runAsUser"},
		{"user left to the image", func(c *corev1.SecurityContext) { c.RunAsUser = nil }, "runAsUser"},
		{"escalation", func(c *corev1.SecurityContext) { c.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"a capability added", func(c *corev1.SecurityContext) { c.Capabilities.Add = []corev1.Capability{"NET_ADMIN"} }, "capabilities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(c)
			err := checkLockedDown(nil, c)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}
