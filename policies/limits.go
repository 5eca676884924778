package policies

import (
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on configuration text, checked before the HCL parser sees it (the
// nesting is counted over the tokens of HCL's scanner, a state machine that
// does not recurse). The parser and the evaluation of expressions recurse
// once per level of nesting, without a limit of their own: a few kilobytes
// of "[" would exhaust the stack, a fatal error no recover can catch.
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
	if pos, ok := nestingOK(src); !ok {
		return Diagnostics{{File: name, Line: pos.Line, Column: pos.Column,
			Message: fmt.Sprintf("nested more than %d levels deep here (brackets, braces, parentheses, blocks, strings "+
				"with templates, or operators in one expression), so it was not parsed: a configuration never needs "+
				"this much nesting; write the value without it", MaxNesting)}}
	}
	return nil
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
	kind  int
	depth int // nesting level of the frame itself
	ops   int // operators (or open directives) seen in it since the last separator
}

// opens are the tokens that open a frame, by the kind of frame.
var opens = map[hclsyntax.TokenType]int{
	hclsyntax.TokenOBrace: frameBrace, hclsyntax.TokenOParen: frameParen, hclsyntax.TokenOBrack: frameBracket,
	hclsyntax.TokenTemplateInterp: frameInterp, hclsyntax.TokenTemplateControl: frameInterp,
	hclsyntax.TokenOQuote: frameString, hclsyntax.TokenOHeredoc: frameHeredoc,
}

// closes are the tokens that close a frame: the kind they close, and
// whether they close it over ( and [ left open inside it (as HCL's scanner
// does, which tracks braces alone to tell where a template resumes).
var closes = map[hclsyntax.TokenType]struct {
	kind    int
	through bool
}{
	hclsyntax.TokenCBrace:         {frameBrace, true},
	hclsyntax.TokenTemplateSeqEnd: {frameInterp, true},
	hclsyntax.TokenCParen:         {frameParen, false},
	hclsyntax.TokenCBrack:         {frameBracket, false},
	hclsyntax.TokenCQuote:         {frameString, false},
	hclsyntax.TokenCHeredoc:       {frameHeredoc, false},
}

// operators each count as a level of nesting: a chain of them is a tree as
// deep as the chain is long.
var operators = map[hclsyntax.TokenType]bool{
	hclsyntax.TokenBang: true, hclsyntax.TokenMinus: true, hclsyntax.TokenPlus: true, hclsyntax.TokenStar: true,
	hclsyntax.TokenSlash: true, hclsyntax.TokenPercent: true, hclsyntax.TokenEqualOp: true, hclsyntax.TokenNotEqual: true,
	hclsyntax.TokenLessThan: true, hclsyntax.TokenLessThanEq: true, hclsyntax.TokenGreaterThan: true,
	hclsyntax.TokenGreaterThanEq: true, hclsyntax.TokenAnd: true, hclsyntax.TokenOr: true, hclsyntax.TokenQuestion: true,
}

// nestingOK reports whether the nesting of src stays within MaxNesting,
// and when not, where it went past. It reads the tokens of HCL's scanner, a
// state machine that does not recurse, so it sees strings, heredocs,
// templates and comments exactly as the parser would, and counts without
// recursion what the parser would recurse into: brackets, braces,
// parentheses, strings and heredocs, interpolations, %{if}/%{for}
// directives until their end, splats, and the operators of one
// expression. Input it cannot make sense of only counts more; the parser
// then reports it.
func nestingOK(src []byte) (hcl.Pos, bool) {
	toks, _ := hclsyntax.LexConfig(src, "", hcl.InitialPos)
	stack := []nestFrame{{kind: frameBody}}
	level := func() int { top := stack[len(stack)-1]; return top.depth + top.ops }
	for i, tok := range toks {
		top := &stack[len(stack)-1]
		next := hclsyntax.TokenEOF
		var nextBytes []byte
		if i+1 < len(toks) {
			next, nextBytes = toks[i+1].Type, toks[i+1].Bytes
		}
		if kind, ok := opens[tok.Type]; ok {
			switch {
			case tok.Type == hclsyntax.TokenTemplateControl && (string(nextBytes) == "if" || string(nextBytes) == "for"):
				top.ops++ // the directive's body is nested until its end
			case tok.Type == hclsyntax.TokenTemplateControl && (string(nextBytes) == "endif" || string(nextBytes) == "endfor"):
				top.ops = max(top.ops-1, 0)
			case tok.Type == hclsyntax.TokenOBrack && next == hclsyntax.TokenStar:
				top.ops++ // a splat wraps the expression before it
			}
			stack = append(stack, nestFrame{kind: kind, depth: level() + 1})
			if level() > MaxNesting {
				return tok.Range.Start, false
			}
			continue
		}
		if c, ok := closes[tok.Type]; ok {
			for j := len(stack) - 1; j > 0; j-- {
				k := stack[j].kind
				if k == c.kind {
					stack = stack[:j]
					break
				}
				if !c.through || (k != frameParen && k != frameBracket) {
					break // a stray closer: the count stays
				}
			}
			continue
		}
		switch {
		case operators[tok.Type]:
			top.ops++
			if level() > MaxNesting {
				return tok.Range.Start, false
			}
		case tok.Type == hclsyntax.TokenComma || tok.Type == hclsyntax.TokenEqual:
			top.ops = 0 // the next element, item or attribute
		case tok.Type == hclsyntax.TokenNewline && (top.kind == frameBody || top.kind == frameBrace):
			top.ops = 0 // the next attribute, block or item
		}
	}
	return hcl.Pos{}, true
}
