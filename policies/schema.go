package policies

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// fieldKind is what may be written for a key.
type fieldKind int

const (
	kindString             fieldKind = iota // attribute: a string
	kindInt                                 // attribute: a whole number
	kindNumber                              // attribute: a number, fractions allowed
	kindBool                                // attribute: true or false
	kindStringList                          // attribute: a list of strings
	kindNumberOrStringList                  // attribute: a list of whole numbers and strings
	kindStringMap                           // attribute: a map of strings
	kindBlock                               // block without labels, at most once
	kindLabeledBlocks                       // blocks with one label, unique by label
)

// isBlock reports whether the key is written as a block rather than as an
// attribute.
func (k fieldKind) isBlock() bool { return k == kindBlock || k == kindLabeledBlocks }

// expected describes the kind for a "must be …" message.
func (k fieldKind) expected() string {
	switch k {
	case kindString:
		return "a string"
	case kindInt:
		return "a number"
	case kindNumber:
		return "a number"
	case kindBool:
		return "true or false"
	case kindStringList:
		return "a list of strings"
	case kindNumberOrStringList:
		return "a list of numbers or strings"
	case kindStringMap:
		return "a map of strings"
	}
	return "a block"
}

// field is one key of a block.
type field struct {
	name   string
	kind   fieldKind
	secret bool    // never echo the value (for a map: its values)
	block  *schema // the nested block's keys, for block kinds
}

// schema is the set of keys allowed in one block (or at the top level).
type schema struct {
	fields map[string]*field
}

// rootSchema is the top level of a configuration file, derived from the
// file structs once.
var rootSchema = schemaOf(reflect.TypeFor[fileConfig]())

// schemaOf derives the keys allowed in a block from its file struct. It
// panics on a field type it does not know: that is a programming error that
// any test loading a file would reveal.
func schemaOf(t reflect.Type) *schema {
	s := &schema{fields: map[string]*field{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := &field{name: name, secret: sf.Tag.Get("secret") == "true"}
		ft := sf.Type
		switch {
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.String:
			f.kind = kindString
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Int:
			f.kind = kindInt
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Float64:
			f.kind = kindNumber
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Bool:
			f.kind = kindBool
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			f.kind = kindStringList
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Interface:
			f.kind = kindNumberOrStringList
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.String:
			f.kind = kindStringMap
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			f.kind, f.block = kindBlock, schemaOf(ft.Elem())
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Pointer &&
			ft.Elem().Elem().Kind() == reflect.Struct:
			f.kind, f.block = kindLabeledBlocks, schemaOf(ft.Elem().Elem())
		default:
			panic(fmt.Sprintf("policies: field %s.%s has unsupported type %s", t.Name(), sf.Name, ft))
		}
		s.fields[name] = f
	}
	return s
}

// names lists the keys of the schema, sorted; with blocks set it lists only
// block types, with attrs set only attributes.
func (s *schema) names(blocks, attrs bool) []string {
	var out []string
	for name, f := range s.fields {
		if (f.kind.isBlock() && blocks) || (!f.kind.isBlock() && attrs) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// unknownAttribute explains an attribute name that is not allowed in the
// block at path ("" for the top level).
func (s *schema) unknownAttribute(path, name string) string {
	if path == "" {
		return "unknown key; only blocks are allowed at the top level: " +
			strings.Join(s.names(true, false), ", ") + didYouMean(name, s.names(true, false))
	}
	return "unknown key; valid keys: " + strings.Join(s.names(true, true), ", ") +
		didYouMean(name, s.names(true, true))
}

// unknownBlock explains a block type that is not allowed in the block at
// path ("" for the top level).
func (s *schema) unknownBlock(path, typ string) string {
	valid := s.names(true, false)
	if len(valid) == 0 {
		return fmt.Sprintf("unknown block type %q; %s takes no blocks", typ, path)
	}
	return fmt.Sprintf("unknown block type %q; valid block types: %s%s",
		typ, strings.Join(valid, ", "), didYouMean(typ, valid))
}

// didYouMean returns `; did you mean "x"?` when one of the options is close
// to name, else "".
func didYouMean(name string, options []string) string {
	best, bestDist := "", 3 // suggest only within an edit distance of 2
	for _, o := range options {
		if d := editDistance(strings.ToLower(name), o); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" || bestDist >= len(name) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, counting a
// transposition of two neighbouring letters as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
