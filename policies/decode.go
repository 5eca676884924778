package policies

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// walker turns the bodies of parsed files into one map[string]any (blocks
// become nested maps, labelled blocks a map by label), checking keys, block
// structure and value types against the schema as it goes. It remembers
// where each key was written, since mapstructure's errors carry no
// positions.
type walker struct {
	ctx    *hcl.EvalContext
	root   map[string]any
	ranges map[string]hcl.Range // key path → attribute name or block header
	bad    map[string]bool      // key paths whose value was rejected
	diags  Diagnostics

	// layer is the layer of the files being added (see LoadLayered); a
	// labelled block of a higher layer replaces the lower layer's block
	// with the same label. layers records the layer of each labelled block.
	layer  int
	layers map[string]int
	// policyOnly restricts the files being added to policy blocks (those
	// that may come from Consul KV).
	policyOnly bool
}

// policyBlocks are the blocks a fleet-wide policy (Consul KV) may hold.
var policyBlocks = map[string]bool{"breaker": true, "upstream": true, "model": true, "notify": true}

func newWalker(ctx *hcl.EvalContext) *walker {
	return &walker{
		ctx:    ctx,
		root:   map[string]any{},
		ranges: map[string]hcl.Range{},
		bad:    map[string]bool{},
		layers: map[string]int{},
	}
}

// file adds the contents of one parsed file. Singleton blocks and block
// labels are checked for uniqueness across every file added.
func (w *walker) file(f *hcl.File) {
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		w.diags = append(w.diags, diagAt(f.Body.MissingItemRange(), "", "not in HCL native syntax"))
		return
	}
	if w.policyOnly {
		for _, a := range body.Attributes {
			w.errorf(a.NameRange, a.Name, "a policy from Consul KV may hold only breaker, upstream, model and notify blocks, not %s", a.Name)
		}
		kept := *body
		kept.Attributes = nil
		kept.Blocks = nil
		for _, b := range body.Blocks {
			if !policyBlocks[b.Type] {
				w.errorf(b.TypeRange, b.Type, "a policy from Consul KV may hold only breaker, upstream, model and notify blocks, not %s: put it in a local file", b.Type)
				continue
			}
			kept.Blocks = append(kept.Blocks, b)
		}
		body = &kept
	}
	w.body("", body, rootSchema, w.root)
}

// forget drops what was recorded under key (a block being replaced by a
// higher layer's).
func (w *walker) forget(key string) {
	for k := range w.ranges {
		if k == key || strings.HasPrefix(k, key+".") {
			delete(w.ranges, k)
		}
	}
	for k := range w.bad {
		if k == key || strings.HasPrefix(k, key+".") {
			delete(w.bad, k)
		}
	}
}

func (w *walker) errorf(rng hcl.Range, key, format string, args ...any) {
	w.diags = append(w.diags, diagAt(rng, key, format, args...))
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// body walks the attributes (in source order) and blocks of the block at path.
func (w *walker) body(path string, body *hclsyntax.Body, s *schema, out map[string]any) {
	attrs := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	for _, a := range attrs {
		w.attribute(path, a, s, out)
	}
	for _, b := range body.Blocks {
		w.block(path, b, s, out)
	}
}

func (w *walker) attribute(path string, a *hclsyntax.Attribute, s *schema, out map[string]any) {
	key := joinKey(path, a.Name)
	f := s.fields[a.Name]
	switch {
	case f == nil:
		w.errorf(a.NameRange, key, "%s", s.unknownAttribute(path, a.Name))
		return
	case f.kind.isBlock():
		example := a.Name + " {"
		if f.kind == kindLabeledBlocks {
			example = a.Name + ` "NAME" {`
		}
		w.errorf(a.NameRange, key, "%s is a block, not an attribute: write %s ... } without \"=\"", a.Name, example)
		return
	}
	val, diags := a.Expr.Value(w.ctx)
	if diags.HasErrors() {
		w.diags = append(w.diags, fromHCL(diags, key)...)
		w.bad[key] = true
		return
	}
	if val.IsNull() {
		return // `key = null` leaves the key unset
	}
	goVal, problem := convertValue(val, f)
	if problem != "" {
		w.errorf(a.NameRange, key, "%s", problem)
		w.bad[key] = true
		return
	}
	out[a.Name] = goVal
	w.ranges[key] = a.NameRange
}

func (w *walker) block(path string, b *hclsyntax.Block, s *schema, out map[string]any) {
	key := joinKey(path, b.Type)
	f := s.fields[b.Type]
	switch {
	case f == nil:
		w.errorf(b.TypeRange, key, "%s", s.unknownBlock(path, b.Type))
		return
	case !f.kind.isBlock():
		w.errorf(b.TypeRange, key, "%s is an attribute, not a block: write %s = ...", b.Type, b.Type)
		return
	}
	var sub map[string]any
	switch f.kind {
	case kindBlock:
		if len(b.Labels) > 0 {
			w.errorf(b.LabelRanges[0], key, "the %s block takes no label: remove %q", b.Type, b.Labels[0])
			w.discard(key, b, f)
			return
		}
		if prev, dup := w.ranges[key]; dup {
			w.errorf(b.TypeRange, key, "duplicate %s block; also defined at %s: only one is allowed, merge them",
				b.Type, rangeString(prev))
			w.discard(key, b, f)
			return
		}
		sub = map[string]any{}
		out[b.Type] = sub
	case kindLabeledBlocks:
		noun, role, example := labelWords(b.Type)
		if len(b.Labels) != 1 {
			w.errorf(b.TypeRange, key, "a %s block takes exactly one label, %s, e.g. %s %q { ... }; got %d",
				b.Type, role, b.Type, example, len(b.Labels))
			w.discard(key, b, f)
			return
		}
		label := b.Labels[0]
		if label == "" || strings.IndexFunc(label, badLabelRune) >= 0 {
			w.errorf(b.LabelRanges[0], key, "invalid %s %s %q: use a non-empty %s without spaces or control characters",
				b.Type, noun, label, noun)
			w.discard(key, b, f)
			return
		}
		key = joinKey(key, label)
		if prev, dup := w.ranges[key]; dup {
			if w.layers[key] < w.layer {
				w.forget(key) // a higher layer overrides the whole block
			} else {
				w.errorf(b.TypeRange, key, "duplicate %s block %q; also defined at %s: %s %ss must be unique across all files",
					b.Type, label, rangeString(prev), b.Type, noun)
				w.discard(key, b, f)
				return
			}
		}
		w.layers[key] = w.layer
		group, _ := out[b.Type].(map[string]any)
		if group == nil {
			group = map[string]any{}
			out[b.Type] = group
		}
		sub = map[string]any{}
		group[label] = sub
	}
	w.ranges[key] = b.DefRange()
	w.body(key, b.Body, f.block, sub)
}

// labelWords says how messages speak of the label of a block type: the
// word for it, what it is, and an example. A model's label is not called
// its name, since a model has a name key of its own.
func labelWords(typ string) (noun, role, example string) {
	if typ == "model" {
		return "label", "the name agents ask for", "gpt-4o"
	}
	return "name", "its name", "ops"
}

// badLabelRune reports whether r may not appear in a block's label.
func badLabelRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// discard checks the contents of a block that cannot be used (a duplicate,
// or one with wrong labels), so its own problems are reported too, without
// adding anything to the configuration.
func (w *walker) discard(key string, b *hclsyntax.Block, f *field) {
	sub := newWalker(w.ctx)
	sub.body(key, b.Body, f.block, sub.root)
	w.diags = append(w.diags, sub.diags...)
}

// convertValue checks that val can be used for the field and converts it to
// a plain Go value for mapstructure. It follows HCL's own conversions (so
// port = "8081" and stall_after = 0 are accepted) and returns a message
// instead when the value does not fit.
func convertValue(val cty.Value, f *field) (any, string) {
	if !val.IsWhollyKnown() {
		return nil, "value is not known" // cannot happen without variables
	}
	mustBe := func() string {
		return fmt.Sprintf("must be %s, got %s", f.kind.expected(), describe(val, f.secret))
	}
	t := val.Type()
	var want cty.Type
	switch f.kind {
	case kindString:
		want = cty.String
	case kindBool:
		want = cty.Bool
	case kindInt, kindNumber:
		want = cty.Number
	case kindStringList:
		if !t.IsListType() && !t.IsTupleType() && !t.IsSetType() {
			if t == cty.String && !f.secret {
				return nil, mustBe() + fmt.Sprintf(": write [%q]", val.AsString())
			}
			return nil, mustBe()
		}
		want = cty.List(cty.String)
	case kindNumberOrStringList:
		if !t.IsListType() && !t.IsTupleType() && !t.IsSetType() {
			if t == cty.String && !f.secret {
				return nil, mustBe() + fmt.Sprintf(": write [%q]", val.AsString())
			}
			if t == cty.Number && !f.secret {
				return nil, mustBe() + fmt.Sprintf(": write [%s]", val.AsBigFloat().Text('g', -1))
			}
			return nil, mustBe()
		}
		return numbersOrStrings(val, f.secret)
	case kindStringMap:
		if !t.IsMapType() && !t.IsObjectType() {
			return nil, mustBe()
		}
		want = cty.Map(cty.String)
	}
	conv, err := convert.Convert(val, want)
	if err != nil {
		return nil, mustBe()
	}
	switch f.kind {
	case kindInt:
		bf := conv.AsBigFloat()
		if !bf.IsInt() {
			return nil, fmt.Sprintf("must be a whole number, got %s", describe(val, f.secret))
		}
		if i, acc := bf.Int64(); acc != big.Exact || int64(int(i)) != i {
			return nil, fmt.Sprintf("number is out of range, got %s", describe(val, f.secret))
		}
	case kindNumber:
		if fl, _ := conv.AsBigFloat().Float64(); math.IsInf(fl, 0) {
			return nil, fmt.Sprintf("number is out of range, got %s", describe(val, f.secret))
		}
	case kindStringList:
		for i, e := range conv.AsValueSlice() {
			if e.IsNull() {
				return nil, fmt.Sprintf("must be a list of strings, but element %d is null", i+1)
			}
		}
	case kindStringMap:
		for k, e := range conv.AsValueMap() {
			if e.IsNull() {
				return nil, fmt.Sprintf("must be a map of strings, but %q is null", k)
			}
		}
	}
	return ctyToGo(conv), ""
}

// numbersOrStrings converts a list whose elements may each be a whole
// number or a string (a tuple such as [429, "5xx"]) to []any of int and
// string, keeping every element's own type.
func numbersOrStrings(val cty.Value, secret bool) (any, string) {
	out := make([]any, 0, val.LengthInt())
	for i, e := range val.AsValueSlice() {
		switch {
		case e.IsNull():
			return nil, fmt.Sprintf("must be a list of numbers or strings, but element %d is null", i+1)
		case e.Type() == cty.String:
			out = append(out, e.AsString())
		case e.Type() == cty.Number:
			n, ok := ctyToGo(e).(int)
			if !ok {
				return nil, fmt.Sprintf("must be a list of whole numbers or strings, but element %d is %s",
					i+1, describe(e, secret))
			}
			out = append(out, n)
		default:
			return nil, fmt.Sprintf("must be a list of numbers or strings, but element %d is %s", i+1, describe(e, secret))
		}
	}
	return out, ""
}

// describe names a value for an error message, e.g. `string "abc"`. The
// value itself is left out for secrets, collections, and long strings are
// shortened.
func describe(val cty.Value, secret bool) string {
	t := val.Type()
	switch {
	case t == cty.String:
		if secret {
			return "a string"
		}
		s := val.AsString()
		if r := []rune(s); len(r) > 40 {
			s = string(r[:40]) + "…"
		}
		return fmt.Sprintf("string %q", s)
	case t == cty.Number:
		if secret {
			return "a number"
		}
		return "number " + val.AsBigFloat().Text('g', -1)
	case t == cty.Bool:
		if secret {
			return "a bool"
		}
		return fmt.Sprintf("bool %t", val.True())
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		return "a list"
	case t.IsMapType() || t.IsObjectType():
		return "an object"
	}
	return t.FriendlyName()
}

// ctyToGo converts a known cty value to plain Go: string, int (when
// integral) or float64, bool, []any, map[string]any; null becomes nil.
func ctyToGo(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); bf.IsInt() && acc == big.Exact && int64(int(i)) == i {
			return int(i)
		}
		f, _ := bf.Float64()
		return f
	case t == cty.Bool:
		return v.True()
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for _, e := range v.AsValueSlice() {
			out = append(out, ctyToGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for k, e := range v.AsValueMap() {
			out[k] = ctyToGo(e)
		}
		return out
	}
	return nil
}

// decode fills the file structs from the walked map with mapstructure.
// Every unknown key is an error (ErrorUnused); the walker has already
// reported those with positions, so an error here is a safety net, reported
// at the recorded position of the key when there is one.
func (w *walker) decode() (*fileConfig, Diagnostics) {
	var fc fileConfig
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      &fc,
		ErrorUnused: true,
		MatchName:   func(mapKey, fieldName string) bool { return mapKey == fieldName },
	})
	if err != nil {
		return nil, Diagnostics{{Message: "internal error: " + err.Error()}}
	}
	if err := dec.Decode(w.root); err != nil {
		return nil, w.decodeErrors(err)
	}
	return &fc, nil
}

// decodeErrors converts mapstructure's errors, which name keys like
// "notify[ops].webhook", into positioned diagnostics.
func (w *walker) decodeErrors(err error) Diagnostics {
	var out Diagnostics
	var walk func(error)
	walk = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			out = append(out, w.decodeError(de))
			return
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		if next := errors.Unwrap(err); next != nil {
			walk(next)
			return
		}
		out = append(out, Diagnostic{Message: err.Error()})
	}
	walk(err)
	return out
}

// decodeError positions one mapstructure error at its key, or at the
// nearest enclosing block that was written in a file.
func (w *walker) decodeError(de *mapstructure.DecodeError) Diagnostic {
	key := strings.NewReplacer("[", ".", "]", "").Replace(de.Name())
	d := Diagnostic{Key: key, Message: de.Unwrap().Error()}
	for k := key; k != ""; k = parentKey(k) {
		if rng, ok := w.ranges[k]; ok {
			d.File, d.Line, d.Column = rng.Filename, rng.Start.Line, rng.Start.Column
			break
		}
	}
	return d
}

// parentKey strips the last element of a dotted key path.
func parentKey(key string) string {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return ""
	}
	return key[:i]
}
