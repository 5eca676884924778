package deploycheck

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	corev1 "k8s.io/api/core/v1"

	"github.com/agent-sidecar/sidecar/policies"
)

// configKey is the ConfigMap key of the sidecar's configuration.
const configKey = "sidecar.hcl"

// downwardValues stand for what the downward API gives a container: a
// pod's name, its IP and its node's IP (documentation addresses).
var downwardValues = map[string]string{
	"metadata.name":      "writer-6b7f9c5d48-x2k9q",
	"metadata.namespace": "default",
	"status.podIP":       "192.0.2.17",
	"status.hostIP":      "198.51.100.4",
}

// secretAttributes are the keys of sidecar.hcl whose values are secrets:
// each must read its value with env("…") instead of holding it. A webhook
// URL is one too: many services put their secret in its path.
var secretAttributes = []string{"api_key", "token", "ingress_token", "webhook"}

// secretHeaderMaps are the keys whose every value is a secret (a notify
// block's headers).
var secretHeaderMaps = []string{"headers"}

// parseHCL parses sidecar.hcl as the sidecar's loader does (the same HCL
// native syntax), for the checks that look at how values are written.
func parseHCL(t *testing.T, src string) *hclsyntax.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), configKey, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the ConfigMap's %s does not parse: %s", configKey, diags.Error())
	}
	return f.Body.(*hclsyntax.Body)
}

// envNames returns the names every env("NAME") call of the body reads, in
// order of appearance, once each. A call whose argument is not a literal
// string is reported as an error: the test could not check it is given.
func envNames(body *hclsyntax.Body) ([]string, error) {
	var names []string
	var bad error
	diags := hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "env" {
			return nil
		}
		name, ok := literalString(call)
		if !ok {
			bad = fmt.Errorf("%s: env() with an argument that is not a literal string: name the variable", call.Range())
			return nil
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	if diags.HasErrors() {
		return nil, diags
	}
	return names, bad
}

// literalString returns the argument of a one-argument call when it is a
// constant string.
func literalString(call *hclsyntax.FunctionCallExpr) (string, bool) {
	if len(call.Args) != 1 {
		return "", false
	}
	v, diags := call.Args[0].Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type().FriendlyName() != "string" {
		return "", false
	}
	return v.AsString(), true
}

// isEnvCall reports whether an expression is exactly env("NAME").
func isEnvCall(e hclsyntax.Expression) bool {
	call, ok := e.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "env" {
		return false
	}
	_, ok = literalString(call)
	return ok
}

// literalSecrets lists the secret keys of the body (secretAttributes, and
// each value of secretHeaderMaps) whose value is written in the file
// rather than read with env("…"), as "block.key (file:line)".
func literalSecrets(body *hclsyntax.Body) []string {
	type frame struct {
		body *hclsyntax.Body
		path string
	}
	var found []string
	stack := []frame{{body, ""}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for name, attr := range f.body.Attributes {
			where := fmt.Sprintf("%s (%s)", join(f.path, name), attr.SrcRange)
			switch {
			case slices.Contains(secretAttributes, name) && !isEnvCall(attr.Expr):
				found = append(found, where)
			case slices.Contains(secretHeaderMaps, name):
				obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
				if !ok {
					found = append(found, where+": not a map of env() calls")
					continue
				}
				for _, item := range obj.Items {
					if !isEnvCall(item.ValueExpr) {
						found = append(found, fmt.Sprintf("%s (%s)", join(f.path, name), item.ValueExpr.Range()))
					}
				}
			}
		}
		for _, b := range f.body.Blocks {
			stack = append(stack, frame{b.Body, join(f.path, strings.Join(append([]string{b.Type}, b.Labels...), "."))})
		}
	}
	slices.Sort(found)
	return found
}

// containerEnv resolves a container's environment as the kubelet would
// build it: literal values with $(VAR) references to the variables above
// them expanded, downward API fields from downwardValues, and Secret keys
// from the example Secrets (by name). A reference to a Secret or key that
// is not there is an error.
func containerEnv(c *corev1.Container, secrets []*corev1.Secret) (map[string]string, error) {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expandKubeRefs(e.Value, env)
		case e.ValueFrom.FieldRef != nil:
			v, ok := downwardValues[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				return nil, fmt.Errorf("%s: %s from the downward API field %q, which the test does not know",
					c.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secretValue(secrets, ref.Name, ref.Key)
			if !ok {
				return nil, fmt.Errorf("%s: %s from key %q of Secret %q, which %s does not hold",
					c.Name, e.Name, ref.Key, ref.Name, secretExampleFile)
			}
			env[e.Name] = v
		default:
			return nil, fmt.Errorf("%s: %s comes from a source the test does not know; add it to containerEnv", c.Name, e.Name)
		}
	}
	return env, nil
}

// secretValue returns key of the Secret named name, from stringData or
// data.
func secretValue(secrets []*corev1.Secret, name, key string) (string, bool) {
	for _, s := range secrets {
		if s.Name != name {
			continue
		}
		if v, ok := s.StringData[key]; ok {
			return v, true
		}
		if v, ok := s.Data[key]; ok {
			return string(v), true
		}
	}
	return "", false
}

// kubeRef is a $(VAR) reference in a container's env value.
var kubeRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandKubeRefs expands $(VAR) as Kubernetes does in env values: a
// variable defined above is replaced by its value, an undefined one is left
// as written, and $$ stands for a literal $.
func expandKubeRefs(s string, defined map[string]string) string {
	return kubeRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := defined[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// consulEnvironment is every variable the sidecar's loader reads on its
// own (besides env() calls): cleared before loading, so that the machine
// running the test does not change what is loaded.
var consulEnvironment = []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_CACERT",
	"CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME", "SIDECAR_TOKEN"}

// loadConfig writes the ConfigMap's sidecar.hcl to a directory and loads
// it with the sidecar's own loader, as `sidecar agent -config-dir` does,
// with the environment the sidecar container gets.
func loadConfig(t *testing.T, src string, env map[string]string) (*policies.Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, configKey), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range consulEnvironment {
		t.Setenv(name, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return policies.Load(dir)
}

// port returns the port of a host:port address, or -1.
func port(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return -1
	}
	return n
}
