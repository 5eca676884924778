package policies

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IsFailureStatus reports whether an HTTP response with this status counts
// as a failure of the call. It relies on FailureStatuses being sorted, as
// Load makes it, and allocates nothing: it runs on every proxied call.
func (b Breaker) IsFailureStatus(code int) bool {
	_, found := slices.BinarySearch(b.FailureStatuses, code)
	return found
}

// Status numbers a failure_statuses element may name.
const (
	minStatus = 100
	maxStatus = 599
)

// statusClasses are the classes failure_statuses may name, and the first
// status of each.
var statusClasses = map[string]int{"4xx": 400, "5xx": 500}

// expandStatuses turns failure_statuses as written (whole numbers, and
// strings holding a class such as "5xx" or a number) into the sorted list of
// statuses without duplicates. It returns a description of the first bad
// element instead when there is one.
func expandStatuses(list []any) ([]int, string) {
	var set [maxStatus + 1]bool
	for i, e := range list {
		switch e := e.(type) {
		case int:
			if e < minStatus || e > maxStatus {
				return nil, fmt.Sprintf("element %d must be a status number between %d and %d, got %d",
					i+1, minStatus, maxStatus, e)
			}
			set[e] = true
		case string:
			s := strings.ToLower(strings.TrimSpace(e))
			if n, err := strconv.Atoi(s); err == nil {
				if n < minStatus || n > maxStatus {
					return nil, fmt.Sprintf("element %d must be a status number between %d and %d, got %q",
						i+1, minStatus, maxStatus, e)
				}
				set[n] = true
				continue
			}
			first, ok := statusClasses[s]
			if !ok {
				if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '3' {
					return nil, fmt.Sprintf(`element %d: the class %q cannot count as failures: use "4xx" or "5xx"`, i+1, e)
				}
				return nil, fmt.Sprintf(`element %d must be a status number or a class like "5xx", got %s`, i+1, quoteShort(e))
			}
			for c := first; c < first+100; c++ {
				set[c] = true
			}
		default:
			// The walker lets only ints and strings through.
			return nil, fmt.Sprintf("element %d must be a status number or a class like \"5xx\"", i+1)
		}
	}
	out := []int{}
	for c := minStatus; c <= maxStatus; c++ {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, ""
}

// compactStatuses writes a sorted status list the way failure_statuses is
// written: a complete class becomes "4xx" or "5xx", e.g. [429, "5xx"].
func compactStatuses(codes []int) []any {
	out := []any{}
	for i := 0; i < len(codes); {
		c := codes[i]
		if c%100 == 0 && i+99 < len(codes) && codes[i+99] == c+99 {
			if class := strconv.Itoa(c/100) + "xx"; statusClasses[class] == c {
				out = append(out, class)
				i += 100
				continue
			}
		}
		out = append(out, c)
		i++
	}
	return out
}

// quoteShort quotes s for a message, shortened to 40 characters.
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 40 {
		return strconv.Quote(string(r[:40])) + "…"
	}
	return strconv.Quote(s)
}

func (v *validator) breaker(name string, b *breakerFile) {
	key := "breaker." + name
	v.atLeast(key+".consecutive_failures", b.ConsecutiveFailures, 1)
	if r := b.FailureRate; r != nil && (*r < 0 || *r > 100) {
		v.errorf(key+".failure_rate", "must be a percentage between 1 and 100 (0 turns the rate off), got %d", *r)
	}
	v.atLeast(key+".min_calls", b.MinCalls, 1)
	v.duration(key+".window", b.Window, false)
	v.duration(key+".open_for", b.OpenFor, false)
	v.duration(key+".max_open_for", b.MaxOpenFor, false)
	first, err1 := time.ParseDuration(deref(b.OpenFor))
	limit, err2 := time.ParseDuration(deref(b.MaxOpenFor))
	if err1 == nil && err2 == nil && first > 0 && limit > 0 && limit < first {
		at := key + ".max_open_for"
		if !v.pos.written(at) {
			at = key + ".open_for"
		}
		v.errorf(at, "max_open_for (%s) is less than open_for (%s): the cap must be at least the first open period",
			limit, first)
	}
	v.atLeast(key+".half_open_probes", b.HalfOpenProbes, 1)
	if _, problem := expandStatuses(b.FailureStatuses); problem != "" {
		v.errorf(key+".failure_statuses", "%s", problem)
	}
	v.duration(key+".slow_call", b.SlowCall, true)
}

// breakerRef checks that the breaker named at key exists. The "default"
// breaker always does.
func (v *validator) breakerRef(key string, name *string, breakers map[string]*breakerFile) {
	if name == nil {
		return
	}
	if _, ok := breakers[*name]; ok {
		return
	}
	defined := sortedKeys(breakers)
	v.errorf(key, "no breaker block named %q; defined: %s%s", *name, strings.Join(defined, ", "), didYouMean(*name, defined))
}

// sortedKeys returns the keys of m in order.
func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
