package policies

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// How a setting takes a reload is said by a `reload` tag on each field of
// Config, and on each field of the blocks whose tag is "fields":
//
//	reload:"live"      a reload applies it at once (for a block: every setting in it)
//	reload:"restart"   it takes effect when the sidecar starts; a reload keeps the running value
//	reload:"restart,group=consul TLS"
//	                   as restart; the settings of one group are kept together and reported
//	                   as one key, "consul TLS (ca_file, cert_file, …)"
//	reload:"fields"    a block whose settings say it each
//	reload:"live,presence" / reload:"fields,presence=address"
//	                   an optional block (a pointer): adding or removing it needs a restart,
//	                   reported under the block's key (or as its setting named after "=")
//
// A setting's key is its block's key, a dot and its name in snake case:
// Consul.SyncInterval is consul.sync_interval.

// reloadRule is one tagged field.
type reloadRule struct {
	index    int    // field index in its struct
	key      string // "consul.sync_interval"
	restart  bool   // a change needs a restart
	group    string // for restart settings reported together
	fields   []reloadRule
	presence string // optional block: the key adding or removing it is reported as; "" when not asked
}

var reloadRules = sync.OnceValues(func() ([]reloadRule, error) {
	return parseReloadRules(reflect.TypeFor[Config](), "")
})

// parseReloadRules reads the reload tags of struct type t, whose settings'
// keys start with prefix.
func parseReloadRules(t reflect.Type, prefix string) ([]reloadRule, error) {
	var rules []reloadRule
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key := prefix + snakeCase(f.Name)
		tag, ok := f.Tag.Lookup("reload")
		if !ok {
			return nil, fmt.Errorf("%s.%s (%s) has no reload tag: say whether a reload applies it (live) or it needs a restart",
				t.Name(), f.Name, key)
		}
		kind, opts, _ := strings.Cut(tag, ",")
		r := reloadRule{index: i, key: key}
		switch kind {
		case "live":
		case "restart":
			r.restart = true
		case "fields":
			st := f.Type
			if st.Kind() == reflect.Pointer {
				st = st.Elem()
			}
			if st.Kind() != reflect.Struct {
				return nil, fmt.Errorf("%s.%s: reload:\"fields\" on a %s, not a block", t.Name(), f.Name, f.Type)
			}
			var err error
			if r.fields, err = parseReloadRules(st, key+"."); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s.%s: reload tag %q: want live, restart or fields", t.Name(), f.Name, tag)
		}
		for opt := range strings.SplitSeq(opts, ",") {
			name, val, _ := strings.Cut(opt, "=")
			switch {
			case opt == "":
			case name == "group" && r.restart && val != "":
				r.group = val
			case name == "presence" && f.Type.Kind() == reflect.Pointer && !r.restart:
				r.presence = key
				if val != "" {
					r.presence = key + "." + val
				}
			default:
				return nil, fmt.Errorf("%s.%s: reload tag %q: option %q does not apply", t.Name(), f.Name, tag, opt)
			}
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// RestartKeys are the keys of the settings that need a restart, as
// KeepRestartOnly reports them, in the order of Config's fields.
func RestartKeys() []string {
	rules, _ := reloadRules()
	var keys []string
	add := func(k string) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var walk func(rules []reloadRule)
	walk = func(rules []reloadRule) {
		for _, r := range rules {
			if r.presence != "" {
				add(r.presence)
			}
			switch {
			case r.group != "":
				add(groupKey(rules, r.group))
			case r.restart:
				add(r.key)
			case r.fields != nil:
				walk(r.fields)
			}
		}
	}
	walk(rules)
	return keys
}

// KeepRestartOnly returns next with the settings that need a restart kept
// from prev, and the keys of those that differed, in the order of Config's
// fields. Neither prev nor next is changed.
func KeepRestartOnly(prev, next *Config) (*Config, []string) {
	rules, _ := reloadRules() // a bad tag fails TestEveryConfigFieldSaysHowItReloads
	out := *next
	var restart []string
	keepRestartOnly(rules, reflect.ValueOf(prev).Elem(), reflect.ValueOf(&out).Elem(), &restart)
	return &out, restart
}

// keepRestartOnly sets, in out (a copy of the new block), the settings of
// rules that differ from prev back to prev's.
func keepRestartOnly(rules []reloadRule, prev, out reflect.Value, restart *[]string) {
	reported := map[string]bool{}
	for _, r := range rules {
		p, o := prev.Field(r.index), out.Field(r.index)
		if r.presence != "" && p.IsNil() != o.IsNil() {
			*restart = append(*restart, r.presence)
			o.Set(p)
			continue
		}
		switch {
		case r.group != "":
			if reported[r.group] || sameGroup(rules, r.group, prev, out) {
				continue
			}
			reported[r.group] = true
			*restart = append(*restart, groupKey(rules, r.group))
			for _, g := range rules {
				if g.group == r.group {
					out.Field(g.index).Set(prev.Field(g.index))
				}
			}
		case r.restart:
			if !sameSetting(p, o) {
				*restart = append(*restart, r.key)
				o.Set(p)
			}
		case r.fields != nil && o.Kind() == reflect.Pointer:
			if p.IsNil() || o.IsNil() {
				continue
			}
			block := reflect.New(o.Type().Elem()) // next's block is not changed
			block.Elem().Set(o.Elem())
			keepRestartOnly(r.fields, p.Elem(), block.Elem(), restart)
			o.Set(block)
		case r.fields != nil:
			keepRestartOnly(r.fields, p, o, restart)
		}
	}
}

func sameGroup(rules []reloadRule, group string, prev, out reflect.Value) bool {
	for _, r := range rules {
		if r.group == group && !sameSetting(prev.Field(r.index), out.Field(r.index)) {
			return false
		}
	}
	return true
}

// groupKey is how a group of settings is reported: "consul TLS (ca_file,
// cert_file, key_file, tls_server_name, insecure_skip_verify)".
func groupKey(rules []reloadRule, group string) string {
	var names []string
	for _, r := range rules {
		if r.group == group {
			names = append(names, r.key[strings.LastIndex(r.key, ".")+1:])
		}
	}
	return group + " (" + strings.Join(names, ", ") + ")"
}

// sameSetting reports whether two values of a setting are equal, an empty
// list or map being the same as none.
func sameSetting(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice, reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return true
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() && !sameSetting(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameSetting(a.Elem(), b.Elem())
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// snakeCase is a Go field name as a configuration key: SyncInterval is
// sync_interval, CAFile ca_file, TLSServerName tls_server_name.
func snakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) &&
			(unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
