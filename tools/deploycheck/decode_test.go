package deploycheck

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// manifestDir is deploy/kubernetes, seen from this package's directory.
const manifestDir = "../../deploy/kubernetes"

// secretExampleFile is the example Secret: placeholders, left out of the
// kustomization so that applying it never overwrites real values.
const secretExampleFile = "secret.example.yaml"

// kustomization is the part of Kustomize's Kustomization this directory
// uses; decoding it strictly makes any other field fail the test, so the
// base stays this simple.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// manifests is everything deploy/kubernetes holds, decoded.
type manifests struct {
	deployments     []*appsv1.Deployment
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	kustomization   *kustomization
	// files are the names of the YAML files read, sorted.
	files []string
}

// kinds maps "apiVersion kind" to the typed object a document of that
// kind decodes into, and to where it is kept. A document of any other kind
// fails the test: add it here together with the checks it needs.
var kinds = map[string]func(m *manifests) any{
	"apps/v1 Deployment": func(m *manifests) any {
		o := &appsv1.Deployment{}
		m.deployments = append(m.deployments, o)
		return o
	},
	"v1 ConfigMap": func(m *manifests) any {
		o := &corev1.ConfigMap{}
		m.configMaps = append(m.configMaps, o)
		return o
	},
	"v1 Secret": func(m *manifests) any {
		o := &corev1.Secret{}
		m.secrets = append(m.secrets, o)
		return o
	},
	"v1 Service": func(m *manifests) any {
		o := &corev1.Service{}
		m.services = append(m.services, o)
		return o
	},
	"v1 ServiceAccount": func(m *manifests) any {
		o := &corev1.ServiceAccount{}
		m.serviceAccounts = append(m.serviceAccounts, o)
		return o
	},
	"kustomize.config.k8s.io/v1beta1 Kustomization": func(m *manifests) any {
		m.kustomization = &kustomization{}
		return m.kustomization
	},
}

// readManifests reads and strictly decodes every *.yaml and *.yml file of
// dir, failing the test on the first file that does not decode.
func readManifests(t *testing.T, dir string) *manifests {
	t.Helper()
	m := &manifests{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading the manifests: %v", err)
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("reading %s: %v", e.Name(), err)
		}
		if err := m.decodeFile(e.Name(), src); err != nil {
			t.Fatal(err)
		}
		m.files = append(m.files, e.Name())
	}
	sort.Strings(m.files)
	if len(m.files) == 0 {
		t.Fatalf("no *.yaml file in %s", dir)
	}
	return m
}

// decodeFile decodes each document of one file into its typed object.
func (m *manifests) decodeFile(name string, src []byte) error {
	for i, doc := range splitDocuments(src) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return fmt.Errorf("%s: document %d is not YAML: %v", name, i+1, err)
		}
		if head.APIVersion == "" && head.Kind == "" && isEmptyDocument(doc) {
			continue
		}
		newObject, ok := kinds[head.APIVersion+" "+head.Kind]
		if !ok {
			return fmt.Errorf("%s: document %d: apiVersion %q kind %q is not one the test knows; "+
				"add it to kinds in decode_test.go with the checks it needs", name, i+1, head.APIVersion, head.Kind)
		}
		if err := decodeStrict(doc, newObject(m)); err != nil {
			return fmt.Errorf("%s: document %d (%s): %v", name, i+1, head.Kind, err)
		}
	}
	return nil
}

// splitDocuments splits a multi-document YAML stream at its "---" lines.
func splitDocuments(src []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(src, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- #")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

// isEmptyDocument reports whether a document holds nothing but comments
// and blank lines.
func isEmptyDocument(doc []byte) bool {
	var v any
	return yaml.Unmarshal(doc, &v) == nil && v == nil
}

// decodeStrict decodes one YAML document into obj as the API server's
// strict field validation would: an unknown field, a field given twice, or
// a field whose name differs from the API's only in case (which
// encoding/json alone would accept) is an error.
func decodeStrict(doc []byte, obj any) error {
	// The field names first, for an error that gives the field's whole
	// path; then the values, and fields given twice.
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	var tree any
	if err := json.Unmarshal(j, &tree); err != nil {
		return err
	}
	if err := checkFieldNames(tree, reflect.TypeOf(obj)); err != nil {
		return err
	}
	return yaml.UnmarshalStrict(doc, obj)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkFieldNames walks a decoded JSON tree beside the Go type it was
// decoded into and reports the first object key that is not exactly one of
// the type's JSON field names. Values of types with their own decoding
// (quantities, int-or-string) are not looked into. It keeps its own stack
// rather than recursing.
func checkFieldNames(tree any, typ reflect.Type) error {
	type item struct {
		v    any
		t    reflect.Type
		path string
	}
	stack := []item{{tree, typ, ""}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t := it.t
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
			continue
		}
		switch v := it.v.(type) {
		case map[string]any:
			switch t.Kind() {
			case reflect.Struct:
				fields := jsonFields(t)
				for k, child := range v {
					ft, ok := fields[k]
					if !ok {
						return fmt.Errorf("unknown field %q%s", join(it.path, k), caseHint(k, fields))
					}
					stack = append(stack, item{child, ft, join(it.path, k)})
				}
			case reflect.Map:
				for k, child := range v {
					stack = append(stack, item{child, t.Elem(), join(it.path, k)})
				}
			}
		case []any:
			if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				for i, child := range v {
					stack = append(stack, item{child, t.Elem(), fmt.Sprintf("%s[%d]", it.path, i)})
				}
			}
		}
	}
	return nil
}

// jsonFields returns the JSON field names of a struct type, with the
// fields of inlined (embedded) structs lifted into it.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	pending := []reflect.Type{t}
	for len(pending) > 0 {
		st := pending[0]
		pending = pending[1:]
		for f := range st.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
			case name == "" && f.Anonymous:
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				pending = append(pending, ft)
			case name == "":
				fields[f.Name] = f.Type
			default:
				fields[name] = f.Type
			}
		}
	}
	return fields
}

// caseHint names the field a key matches but for its case, if any.
func caseHint(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("; the field is spelled %q", name)
		}
	}
	return ""
}

// join appends a key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
