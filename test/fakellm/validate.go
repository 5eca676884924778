package fakellm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// fieldSet is a set of names: the fields an object may hold, the values a
// field may take.
func fieldSet(names ...string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}

// extraField is the first key of object o that allowed does not hold, ""
// when there is none.
func extraField(o gjson.Result, allowed map[string]bool) string {
	extra := ""
	o.ForEach(func(k, _ gjson.Result) bool {
		if !allowed[k.String()] {
			extra = k.String()
			return false
		}
		return true
	})
	return extra
}

// quotedKeys lists the keys of m, sorted and quoted: "'a', 'b', 'c'".
func quotedKeys[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, "'"+k+"'")
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// oneOf lists values as OpenAI's messages do: "'a'", "'a' and 'b'",
// "'a', 'b', and 'c'".
func oneOf(values ...string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("'%s'", v)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	case 2:
		return q[0] + " and " + q[1]
	}
	return strings.Join(q[:len(q)-1], ", ") + ", and " + q[len(q)-1]
}

// jsonType names the type of v as OpenAI's messages do ("a string", "an
// object").
func jsonType(v gjson.Result) string {
	switch {
	case v.Type == gjson.String:
		return "a string"
	case v.Type == gjson.Number && isInteger(v):
		return "an integer"
	case v.Type == gjson.Number:
		return "a decimal"
	case v.Type == gjson.True || v.Type == gjson.False:
		return "a boolean"
	case v.Type == gjson.Null:
		return "null"
	case v.IsArray():
		return "an array"
	}
	return "an object"
}
