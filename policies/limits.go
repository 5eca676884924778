package policies

import (
	"fmt"
	"io"
	"os"
)

// Limits on configuration text, checked before the HCL parser sees it. The
// parser and the evaluation of expressions recurse once per level of
// nesting, without a limit of their own: a few kilobytes of "[" would
// exhaust the stack, which no recover can catch.
const (
	// MaxSourceBytes is the largest configuration file, and the largest
	// policy value in Consul KV, that is read: 1 MiB.
	MaxSourceBytes = 1 << 20
	// MaxNesting is the deepest nesting accepted: brackets, braces,
	// parentheses, blocks, quoted strings and heredocs with their
	// ${…}/%{…} templates and %{if}/%{for} directives, and operators
	// (each operator of one expression counts as a level).
	MaxNesting = 64
)

// maxDiagnostics is the most errors one load reports; the rest are
// counted. Text full of mistakes (a megabyte of unknown keys) would
// otherwise make an error of tens of megabytes, repeated in the log,
// status and events.
const maxDiagnostics = 100

// capDiagnostics keeps the first maxDiagnostics of ds and says how many
// more there are, in the file of the first one left out.
func capDiagnostics(ds Diagnostics) Diagnostics {
	if len(ds) <= maxDiagnostics {
		return ds
	}
	rest := ds[maxDiagnostics]
	return append(ds[:maxDiagnostics:maxDiagnostics], Diagnostic{File: rest.File,
		Message: fmt.Sprintf("and %d more errors not shown: fix the ones above first", len(ds)-maxDiagnostics)})
}

// readSource reads a local file, refusing one larger than MaxSourceBytes
// without reading more than that.
func readSource(name string) ([]byte, *Diagnostic, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxSourceBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(src) > MaxSourceBytes {
		return nil, &Diagnostic{File: name, Message: tooLarge("the file is")}, nil
	}
	return src, nil, nil
}

func tooLarge(what string) string {
	return fmt.Sprintf("%s larger than the limit of %d bytes (1 MiB) for configuration text: split it into several "+
		"files, or remove what is not configuration", what, MaxSourceBytes)
}

// checkSource refuses configuration text that is too large or nested too
// deeply to parse safely. It returns at most one diagnostic, positioned at
// the opening that went past the limit.
func checkSource(name string, src []byte) Diagnostics {
	if len(src) > MaxSourceBytes {
		return Diagnostics{{File: name, Message: tooLarge(fmt.Sprintf("%d bytes,", len(src)))}}
	}
	if off, ok := nestingOK(src); !ok {
		line, col := lineCol(src, off)
		return Diagnostics{{File: name, Line: line, Column: col,
			Message: fmt.Sprintf("nested more than %d levels deep here (brackets, braces, parentheses, blocks, strings "+
				"with templates, or operators in one expression); nothing of it was read: a configuration never needs "+
				"this, write the value without the nesting", MaxNesting)}}
	}
	return nil
}

// lineCol is the 1-based line and column (in bytes, as HCL counts columns
// of ASCII text) of byte offset off.
func lineCol(src []byte, off int) (int, int) {
	line, start := 1, 0
	for i := 0; i < off && i < len(src); i++ {
		if src[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return line, off - start + 1
}

// Kinds of nesting frame for nestingOK.
const (
	frameBody    = iota // the top level of a file
	frameBrace          // { … }: a block body or an object
	frameParen          // ( … )
	frameBracket        // [ … ]
	frameInterp         // ${ … } or %{ … } inside a template
	frameString         // "…"
	frameHeredoc        // <<EOT … EOT
)

type nestFrame struct {
	kind   int
	depth  int    // nesting level of the frame itself
	ops    int    // operators (or open directives) seen in it since the last separator
	marker string // a heredoc's closing marker
}

// nestingOK scans src without recursion and reports whether its nesting
// stays within MaxNesting; when not, off is where it went past. It follows
// HCL's syntax closely enough to skip comments and to tell strings and
// heredocs from expressions, and errs on the side of counting: input it
// cannot make sense of is left to the parser, which reports it.
func nestingOK(src []byte) (off int, ok bool) {
	stack := []nestFrame{{kind: frameBody}}
	level := func() int { top := stack[len(stack)-1]; return top.depth + top.ops }
	push := func(kind int) bool {
		stack = append(stack, nestFrame{kind: kind, depth: level() + 1})
		return level() <= MaxNesting
	}
	pop := func() {
		if len(stack) > 1 {
			stack = stack[:len(stack)-1]
		}
	}
	op := func() bool {
		stack[len(stack)-1].ops++
		return level() <= MaxNesting
	}
	isIdent := func(c byte) bool {
		return c == '_' || c == '-' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
	}
	atLineStart := true // for heredocs: the scan is at the start of a line
	for i := 0; i < len(src); i++ {
		c := src[i]
		top := &stack[len(stack)-1]
		switch top.kind {
		case frameString, frameHeredoc:
			if top.kind == frameHeredoc && atLineStart {
				j := i
				for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
					j++
				}
				k := j
				for k < len(src) && src[k] != '\n' && src[k] != '\r' {
					k++
				}
				if string(src[j:k]) == top.marker {
					pop()
					i = k - 1
					atLineStart = false
					continue
				}
			}
			atLineStart = c == '\n'
			switch {
			case c == '\\' && top.kind == frameString:
				i++ // an escape: the next byte is text
			case c == '"' && top.kind == frameString:
				pop()
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == c && i+2 < len(src) && src[i+2] == '{':
				i += 2 // $${ and %%{ are text
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				if c == '%' {
					// A directive: %{if} and %{for} open a level that
					// %{endif} and %{endfor} close.
					j := i + 2
					for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '~') {
						j++
					}
					w := j
					for w < len(src) && src[w] >= 'a' && src[w] <= 'z' {
						w++
					}
					switch string(src[j:w]) {
					case "if", "for":
						if !op() {
							return i, false
						}
					case "endif", "endfor":
						if top.ops > 0 {
							top.ops--
						}
					}
				}
				if !push(frameInterp) {
					return i, false
				}
				i++
			}
			continue
		}

		// An expression, a body or an object.
		switch {
		case c == '#' || (c == '/' && i+1 < len(src) && src[i+1] == '/'):
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i-- // the newline is seen next
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			i += 2
			for i+1 < len(src) && (src[i] != '*' || src[i+1] != '/') {
				i++
			}
			i++
		case c == '"':
			if !push(frameString) {
				return i, false
			}
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			j := i + 2
			if j < len(src) && src[j] == '-' {
				j++
			}
			k := j
			for k < len(src) && isIdent(src[k]) {
				k++
			}
			if k == j || k >= len(src) || (src[k] != '\n' && src[k] != '\r') {
				if !op() { // not a heredoc: a comparison
					return i, false
				}
				i++
				continue
			}
			if !push(frameHeredoc) {
				return i, false
			}
			stack[len(stack)-1].marker = string(src[j:k])
			i = k
			if src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			atLineStart = true
		case c == '{' || c == '(' || c == '[':
			kind := map[byte]int{'{': frameBrace, '(': frameParen, '[': frameBracket}[c]
			// A splat ([*] or .*) wraps the expression before it.
			if c == '[' && i+1 < len(src) && src[i+1] == '*' && !op() {
				return i, false
			}
			if !push(kind) {
				return i, false
			}
		case c == '}' || c == ')' || c == ']':
			// Only the closer that matches the innermost opening closes
			// it; a stray one leaves the count as it was.
			if k := top.kind; (c == '}' && (k == frameBrace || k == frameInterp)) ||
				(c == ')' && k == frameParen) || (c == ']' && k == frameBracket) {
				pop()
			}
		case c == '.' && i+1 < len(src) && src[i+1] == '*':
			if !op() {
				return i, false
			}
			i++
		case c == ',' || (c == '=' && (i+1 >= len(src) || src[i+1] != '=')):
			top.ops = 0 // the next element, item or attribute
		case c == '\n':
			if top.kind == frameBody || top.kind == frameBrace {
				top.ops = 0 // the next attribute or item
			}
		case '0' <= c && c <= '9':
			i = skipNumber(src, i) - 1
		case isIdent(c) && c != '-':
			for i+1 < len(src) && isIdent(src[i+1]) {
				i++ // an identifier, which may hold dashes: a-b is one name
			}
		case c == '=' || c == '!' || c == '<' || c == '>' || c == '&' || c == '|':
			// ==, !=, <=, >=, &&, || are one operator; ! and < and > alone too.
			if i+1 < len(src) && (src[i+1] == '=' || (c != '=' && c != '!' && src[i+1] == c)) {
				i++
			}
			if !op() {
				return i, false
			}
		case c == '+' || c == '-' || c == '*' || c == '/' || c == '%' || c == '?':
			if !op() {
				return i, false
			}
		}
	}
	return 0, true
}

// skipNumber returns the end of the number literal starting at i: digits,
// a fraction and an exponent with its sign (1e-5 is one number).
func skipNumber(src []byte, i int) int {
	digits := func() {
		for i < len(src) && '0' <= src[i] && src[i] <= '9' {
			i++
		}
	}
	digits()
	if i+1 < len(src) && src[i] == '.' && '0' <= src[i+1] && src[i+1] <= '9' {
		i++
		digits()
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && '0' <= src[j] && src[j] <= '9' {
			i = j
			digits()
		}
	}
	return i
}
