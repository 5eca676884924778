package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileNesting is configuration text that the HCL parser, or the
// evaluation of what it parsed, follows down one stack frame per level: at
// this size (about 60 KB, a policy value Consul takes by default) the
// brackets, blocks, templates, heredocs, for expressions and splats
// overflow the stack, a fatal error; chains of operators do at 1 MiB.
func hostileNesting() map[string]string {
	const n = 60 << 10
	return map[string]string{
		"brackets":            "x = " + strings.Repeat("[", n),
		"braces of blocks":    strings.Repeat("breaker {\n", n/10),
		"parentheses":         "x = " + strings.Repeat("(", n),
		"unary operators":     "x = " + strings.Repeat("!", n) + "true",
		"negations":           "x = " + strings.Repeat("-", n) + "1",
		"binary operators":    "x = " + strings.Repeat("1+", n/2) + "1",
		"conditionals":        "x = " + strings.Repeat("1?1:", n/4) + "1",
		"templates":           "x = " + strings.Repeat(`"${`, n/3),
		"template directives": `x = "` + strings.Repeat("%{if true}", n/10),
		"heredocs":            "x = " + strings.Repeat("<<EOT\n${", n/8),
		"for expressions":     "x = " + strings.Repeat("[for a in [1]: ", n/15),
		"splats":              "x = [1]" + strings.Repeat("[*]", n/3),
	}
}

// Text nested too deeply is refused before it is parsed, from Consul KV
// and from local files alike, with the position where it went too deep;
// the process lives on.
func TestDeepNestingIsRefusedBeforeParsing(t *testing.T) {
	local := writeLocal(t, "agent {\n  name = \"writer\"\n}\n")
	for name, text := range hostileNesting() {
		t.Run(name, func(t *testing.T) {
			_, err := LoadWithPolicies([]Source{src("deep.hcl", "breaker \"a\" {\n  "+text+"\n}\n")}, nil, local)
			if err == nil || !strings.Contains(err.Error(), "consul:sidecar/policies/deep.hcl:") ||
				!strings.Contains(err.Error(), "nested more than 64 levels deep") {
				t.Fatalf("from Consul KV: %.300v", err)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("one error is enough: %.500v", err)
			}
			file := writeLocal(t, "agent {\n  name = \"writer\"\n}\nbreaker \"a\" {\n  "+text+"\n}\n")
			_, err = Load(file)
			if err == nil || !strings.HasPrefix(err.Error(), file+":") || !strings.Contains(err.Error(), "nested more than 64") {
				t.Fatalf("from a local file: %.300v", err)
			}
			if err := ValidatePolicies([]Source{{Name: "policies/deep.hcl", Data: []byte(text)}}); err == nil ||
				!strings.HasPrefix(err.Error(), "policies/deep.hcl:") || !strings.Contains(err.Error(), "nested more than 64") {
				t.Fatalf("sidecar policy push/diff: %.300v", err)
			}
		})
	}
}

func TestNestingLimitPosition(t *testing.T) {
	text := "breaker \"a\" {\n  # " + strings.Repeat("-", 200) + "\n  x = " + strings.Repeat("[", MaxNesting) + "\n}\n"
	if _, ok := nestingOK([]byte(text)); ok {
		t.Fatal("65 levels (a block and 64 brackets) accepted")
	}
	d := checkSource("f.hcl", []byte(text))
	// The block is level 1; the 64th bracket, at column 7+63, is level 65.
	if len(d) != 1 || d[0].Line != 3 || d[0].Column != 7+MaxNesting-1 {
		t.Fatalf("got %v, want f.hcl:3:%d", d, 7+MaxNesting-1)
	}
}

// What real configurations hold stays well within the limit: comments and
// strings full of brackets and dashes, heredocs, templates, arithmetic.
func TestOrdinaryTextIsWithinTheNestingLimit(t *testing.T) {
	texts := []string{
		"# " + strings.Repeat("-", 500) + "\n// " + strings.Repeat("!", 500) + "\n/* " + strings.Repeat("[", 500) + " */\n",
		"x = \"" + strings.Repeat("[(!-", 200) + "\"\n",
		"x = \"a\\\"" + strings.Repeat("[", 200) + "\"\n",
		"x = <<EOT\n" + strings.Repeat("[{(", 200) + "\n  EOT\ny = <<-EOF\n  ${env(\"A\")} %{ if true }yes%{ endif }\n  EOF\n",
		"x = $${" + strings.Repeat("[", 10) + "\n",
		"headers = { X-Org-Id-Long-Name-With-Dashes = \"a\" }\n" + strings.Repeat("a-b-c-d-e-f-g-h = 1-1\n", 200),
		"max_request_bytes = 10 * 1024 * 1024\nw = 1e-5 + 2.5e+3\nt = env(\"T\") != \"\" ? env(\"T\") : \"30s\"\n",
		"list = [" + strings.Repeat("429, -1, ", 500) + "]\n",
		strings.Repeat("x = \"${\"${\"${1}\"}\"}\"\n", 200),
	}
	for _, text := range texts {
		if pos, ok := nestingOK([]byte(text)); !ok {
			t.Errorf("refused at %d:%d: %.200q", pos.Line, pos.Column, text)
		}
	}
	for _, name := range []string{"testdata/full.hcl", "testdata/sidecar.hcl", "../sidecar.hcl"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if pos, ok := nestingOK(b); !ok {
			t.Errorf("%s refused at %d:%d", name, pos.Line, pos.Column)
		}
	}
}

// A file or a policy larger than 1 MiB is refused (a file without reading
// more than that), and says how big it may be.
func TestSourceSizeLimit(t *testing.T) {
	local := writeLocal(t, "agent {\n  name = \"writer\"\n}\n")
	big := "# " + strings.Repeat("x", MaxSourceBytes) + "\n"
	_, err := LoadWithPolicies([]Source{src("big.hcl", big)}, nil, local)
	if err == nil || !strings.Contains(err.Error(), "consul:sidecar/policies/big.hcl: 1048579 bytes, larger than the limit of 1048576 bytes (1 MiB)") {
		t.Fatalf("a policy over 1 MiB: %v", err)
	}
	file := filepath.Join(t.TempDir(), "big.hcl")
	if err := os.WriteFile(file, []byte("agent {\n  name = \"writer\"\n}\n"+big), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(file)
	if err == nil || !strings.Contains(err.Error(), file+": the file is larger than the limit of 1048576 bytes (1 MiB)") {
		t.Fatalf("a file over 1 MiB: %v", err)
	}
	// Exactly 1 MiB is read.
	exact := "agent {\n  name = \"writer\"\n}\n#"
	exact += strings.Repeat("x", MaxSourceBytes-len(exact)-1) + "\n"
	if err := os.WriteFile(file, []byte(exact), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file); err != nil {
		t.Fatalf("a file of exactly 1 MiB: %v", err)
	}
}

// Text full of mistakes gets the first 100 errors and a count of the rest,
// not an error of megabytes.
func TestErrorsAreCapped(t *testing.T) {
	local := writeLocal(t, "agent {\n  name = \"writer\"\n}\n")
	var many strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&many, "x%d = 1\n", i)
	}
	_, err := LoadWithPolicies([]Source{src("many.hcl", many.String())}, nil, local)
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 101 || !strings.HasPrefix(lines[0], "consul:sidecar/policies/many.hcl:1:1: ") ||
		lines[100] != "consul:sidecar/policies/many.hcl: and 4900 more errors not shown: fix the ones above first" {
		t.Fatalf("%d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

// The scan sees text as the parser does: nesting hidden behind what only
// looks like a string, comment or heredoc is counted.
func TestNestingIsCountedWhereTheParserSeesIt(t *testing.T) {
	deep := strings.Repeat("[", MaxNesting+1)
	texts := map[string]string{
		"after an interpolation closed over a (":  "x = \"${(}\" " + deep,
		"after an unterminated /*":                "x = 1 /* " + deep,
		"after what is not a heredoc":             "x = <<1\n" + deep,
		"after a heredoc whose marker has spaces": "x = <<EOT\nfoo\n  EOT  \ny = " + deep,
		"in an interpolation of a heredoc":        "x = <<EOT\n${" + deep + "\nEOT\n",
		"in directives":                           "x = \"" + strings.Repeat("%{ for a in b }", MaxNesting+1) + "\"",
	}
	for name, text := range texts {
		if _, ok := nestingOK([]byte(text)); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
