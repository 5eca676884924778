package policies

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostic is one problem found in the configuration, with the place it
// was found and, where possible, how to fix it.
type Diagnostic struct {
	// File is the path as given to Load (a file found in a directory is
	// joined to the directory path). Empty for a value that came from the
	// environment.
	File string
	// Line and Column are 1-based; both are 0 when the problem concerns a
	// whole file (for example one that cannot be read).
	Line, Column int
	// Key is the dotted path of the setting, e.g. "health.heartbeat_interval"
	// or "notify.ops.webhook". Empty for syntax errors.
	Key string
	// Message says what is wrong and how to fix it. It never contains the
	// value of a secret.
	Message string
}

// Error formats the diagnostic as "file:line:col: key: message", leaving out
// the parts that are empty.
func (d Diagnostic) Error() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
		}
		b.WriteString(": ")
	}
	if d.Key != "" {
		// A key holds names from the file, which may hold anything (a
		// line break would split the diagnostic): quote what would not
		// print as it is.
		key := d.Key
		if !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) }) {
			key = strconv.Quote(key)
		}
		b.WriteString(key)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every problem found by one Load. Load returns them all, not
// just the first.
type Diagnostics []Diagnostic

// Error joins the diagnostics, one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// diagAt builds a diagnostic positioned at the start of rng.
func diagAt(rng hcl.Range, key, format string, args ...any) Diagnostic {
	return Diagnostic{
		File:    rng.Filename,
		Line:    rng.Start.Line,
		Column:  rng.Start.Column,
		Key:     key,
		Message: fmt.Sprintf(format, args...),
	}
}

// fromHCL converts the errors among HCL's own diagnostics (syntax errors,
// redefined attributes, failed expressions) into Diagnostics. Warnings are
// dropped.
func fromHCL(diags hcl.Diagnostics, key string) Diagnostics {
	var out Diagnostics
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		// HCL's details can span paragraphs; a diagnostic is one line, so
		// every run of whitespace becomes one space.
		msg := strings.Join(strings.Fields(d.Summary), " ")
		if d.Detail != "" {
			msg += ": " + strings.Join(strings.Fields(d.Detail), " ")
		}
		if d.Summary == "Variables not allowed" {
			msg += ` Put strings in quotes; read environment variables with env("NAME").`
		}
		out = append(out, Diagnostic{Key: key, Message: msg})
		rng := d.Subject
		if rng == nil {
			rng = d.Context
		}
		if rng != nil {
			last := &out[len(out)-1]
			last.File, last.Line, last.Column = rng.Filename, rng.Start.Line, rng.Start.Column
		}
	}
	return out
}

// rangeString formats a position the way diagnostics do: "file:line:col".
func rangeString(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", rng.Filename, rng.Start.Line, rng.Start.Column)
}

// sortDiagnostics orders diagnostics by file (in load order), line and
// column, so they read top to bottom. Diagnostics without a known file (for
// example values from the environment) come last.
func sortDiagnostics(ds Diagnostics, files []string) {
	order := make(map[string]int, len(files))
	for i, f := range files {
		if _, seen := order[f]; !seen {
			order[f] = i
		}
	}
	rank := func(d Diagnostic) int {
		if i, ok := order[d.File]; ok {
			return i
		}
		if d.File != "" {
			return len(files) // a path that could not be expanded
		}
		return len(files) + 1
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
