package jsonguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// edgeCases are JSON texts, valid and not, where a hand-written scanner is
// likely to go wrong: strings and escapes, numbers, literals, whitespace,
// structure. Scan must agree with encoding/json.Valid on every one.
var edgeCases = []string{
	// values
	``, ` `, `0`, `-0`, `1`, `-1`, `01`, `-`, `--1`, `+1`, `1.`, `.1`, `1.5`, `1.5e3`, `1e`, `1e+`, `1e-2`,
	`1E+2`, `1.e2`, `0x10`, `1 2`, `123456789012345678901234567890`, `1e400`, `-0.0e-0`, `00`, `0.0.0`,
	`true`, `false`, `null`, `tru`, `nul`, `True`, `nulll`, `truex`, `NaN`, `Infinity`,
	// strings and escapes
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u0041"`, `"\u00e9"`, `"\uD83D\uDE00"`, `"\ud800"`,
	`"\u12"`, `"\u12G4"`, `"\x41"`, `"\a"`, `"\'"`, `"\`, `"abc`, `"\"`, `"\\\"`, `"\\\\"`, "\"a\tb\"",
	"\"a\nb\"", "\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\"é\"", `"\u0000"`,
	`"\uDE00\uD83D"`, `"a"b"`, `"a" "b"`,
	// whitespace
	" \t\r\n1\n\t ", "\v1", "\f1", "1\u00a0", "\xef\xbb\xbf1",
	// arrays
	`[]`, `[ ]`, `[1]`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `[`, `]`, `[[]]`, `[[],[]]`, `[}`, `[1}`, `[[]`,
	`[]]`, `["a",{"b":[null]}]`,
	// objects
	`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{,"a":1}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{1:1}`,
	`{"a":1 "b":2}`, `{"a":1,"b":2}`, `{"a":[1,{"b":{}}]}`, `{]`, `{"a":1]`, `{"a":[}`, `{"a":1}}`, `{"a":1}{}`,
	`{"":0}`, `{"a\"":0}`, `{"a":{"a":{"a":{}}}}`, `{"a":1`, `{"a"`, `{"`, `{`,
}

func TestScanAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range edgeCases {
		_, err := Scan([]byte(in), MaxDepth)
		if want := json.Valid([]byte(in)); (err == nil) != want {
			t.Errorf("Scan(%q): error %v; encoding/json.Valid says %v", in, err, want)
		}
	}
}

func TestScanRefusesDeepNesting(t *testing.T) {
	deep := func(n int, open, close string) []byte {
		return []byte(strings.Repeat(open, n) + strings.Repeat(close, n))
	}
	objects := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		limit   int
		tooDeep bool
	}{
		{"arrays at the limit", deep(128, "[", "]"), 128, false},
		{"arrays one past the limit", deep(129, "[", "]"), 128, true},
		{"objects at the limit", objects(128), 128, false},
		{"objects past the limit", objects(129), 128, true},
		{"mixed past a small limit", []byte(`{"a":[{"b":[1]}]}`), 3, true},
		{"mixed at a small limit", []byte(`{"a":[{"b":1}]}`), 3, false},
		{"ten million open brackets", bytes.Repeat([]byte("["), 10_000_000), 128, true},
		{"wide, not deep", []byte("[" + strings.Repeat("[[1]],", 100_000) + "1]"), 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Scan(tc.body, tc.limit)
			var e *Error
			gotDeep := errors.As(err, &e) && e.TooDeep
			if gotDeep != tc.tooDeep {
				t.Fatalf("too deep = %v (error %v), want %v", gotDeep, err, tc.tooDeep)
			}
			if !tc.tooDeep && err != nil {
				t.Fatalf("error %v for a valid body", err)
			}
			if tc.tooDeep {
				if e.Limit != tc.limit || e.Offset != firstBeyond(tc.body, tc.limit) {
					t.Fatalf("error %+v, want limit %d at byte %d", e, tc.limit, firstBeyond(tc.body, tc.limit))
				}
				if want := "nested deeper than "; !strings.HasPrefix(e.Error(), want) {
					t.Fatalf("message %q", e.Error())
				}
			}
		})
	}
}

// firstBeyond is the offset of the bracket that opens level limit+1.
func firstBeyond(b []byte, limit int) int {
	d := 0
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			if d++; d > limit {
				return i
			}
		case c == ']' || c == '}':
			d--
		}
	}
	return -1
}

func TestScanFindsDuplicateTopLevelKeys(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			b.WriteString(`"k`)
			b.WriteString(strings.Repeat("x", i))
			b.WriteString(`":1,`)
		}
		b.WriteString(extra)
		b.WriteString(`"end":0}`)
		return b.String()
	}
	for _, tc := range []struct {
		body string
		dup  string // "" for none
	}{
		{`{"model":"gpt-4o-mini","max_tokens":10,"model":"o1-pro","max_tokens":100000}`, "model"},
		{`{"model":"a","mod\u0065l":"b"}`, "model"},
		{`{"\u006dodel":"a","model":"b"}`, "model"},
		{`{"é":1,"\u00e9":2}`, "é"},
		{`{"😀":1,"\ud83d\ude00":2}`, "😀"},
		{`{"a\/b":1,"a/b":2}`, "a/b"},
		{`{"\ud800":1,"\udc00":2}`, "\ufffd"}, // both U+FFFD to encoding/json
		{"{\"\xff\":1,\"\xfe\":2}", "\ufffd"},
		{`{"":1,"":2}`, ""},
		{`{"model":"a","messages":[{"model":"b"}],"x":{"model":"c"}}`, "-"},
		{`{"model":"a","Model":"b","model ":"c"}`, "-"},
		{`{"a":{"b":1,"b":2}}`, "-"}, // nested keys are the provider's business
		{`[{"a":1,"a":2}]`, "-"},
		{`{"ab":1,"a\u0062c":2,"abc":3}`, "abc"},
		{many(40, ""), "-"},
		{many(40, `"kxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx":2,`), "kxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
		{many(40, `"k":2,`), "k"},
		{many(40, `"end":2,`), "end"},
	} {
		res, err := Scan([]byte(tc.body), MaxDepth)
		if err != nil {
			t.Fatalf("Scan(%.60q): %v", tc.body, err)
		}
		want := tc.dup
		if want == "-" {
			if res.Dup != nil {
				t.Errorf("Scan(%.60q) found duplicate %q", tc.body, res.DuplicateKey())
			}
			continue
		}
		if res.Dup == nil || res.DuplicateKey() != want {
			t.Errorf("Scan(%.60q): duplicate %q (found %v), want %q", tc.body, res.DuplicateKey(), res.Dup != nil, want)
		}
		if ref, ok := referenceDup([]byte(tc.body)); !ok || ref != want {
			t.Errorf("reference finds %q (%v) in %.60q", ref, ok, tc.body)
		}
	}
}

func TestScanErrorsSayWhere(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,}`, `invalid character '}' looking for the beginning of an object key at byte 7`},
		{`[1,2`, `unexpected end of JSON after an element at byte 4`},
		{`{"a":1} x`, `invalid character 'x' after the top-level value at byte 8`},
		{"\"a\x01\"", `invalid character '\x01' in a string at byte 2`},
		{`"\q"`, `invalid character 'q' in a string escape at byte 2`},
		{`tru`, `invalid literal (expected true) at byte 3`},
		{"\xff", `invalid character '\xff' looking for a value at byte 0`},
	} {
		_, err := Scan([]byte(tc.in), MaxDepth)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Scan(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestScanDoesNotAllocate: the scan of a large body with a few top-level
// keys, valid or too deep, allocates nothing.
func TestScanDoesNotAllocate(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o","messages":[`)
	for i := 0; i < 2000; i++ {
		b.WriteString(`{"role":"user","content":"Hello \"there\" \u00e9 \ud83d\ude00, how are you? 12345"},`)
	}
	b.WriteString(`{"role":"user","content":"x"}],"max_tokens":100,"stream":true,"te\u0073t":1}`)
	body := []byte(b.String())
	if allocs := testing.AllocsPerRun(20, func() {
		if _, err := Scan(body, MaxDepth); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Fatalf("%v allocations per scan of a %d-byte body", allocs, len(body))
	}
}

// referenceDup finds the first repeated top-level key with encoding/json's
// decoder, for bodies json.Valid accepts.
func referenceDup(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		k := tok.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// FuzzScan checks Scan against encoding/json on arbitrary bytes: the same
// verdict on validity (unless the value is nested deeper than the limit,
// which only Scan refuses), and the same duplicate top-level key.
func FuzzScan(f *testing.F) {
	for _, s := range edgeCases {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		strings.Repeat("[", 200) + strings.Repeat("]", 200),
		strings.Repeat(`{"a":`, 129) + "1" + strings.Repeat("}", 129),
		strings.Repeat("[", 10000),
		`{"model":"a","max_tokens":1,"model":"b","max_tokens":100000}`,
		`{"model":"a","mod\u0065l":"b"}`, `{"\ud800":1,"\udc00":2}`, "{\"\xff\":1,\"\xfe\":2}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Scan(body, MaxDepth)
		valid := json.Valid(body)
		var e *Error
		switch {
		case errors.As(err, &e) && e.TooDeep:
			if d := firstBeyondJSON(body, MaxDepth); d != e.Offset {
				t.Fatalf("too deep at byte %d; encoding/json's tokens go past the limit at %d: %q", e.Offset, d, body)
			}
			return
		case (err == nil) != valid:
			t.Fatalf("Scan: %v; encoding/json.Valid: %v, for %q", err, valid, body)
		case err != nil:
			return
		}
		ref, refDup := referenceDup(body)
		if refDup != (res.Dup != nil) || refDup && ref != res.DuplicateKey() {
			t.Fatalf("Scan finds duplicate %q (%v); encoding/json %q (%v), in %q",
				res.DuplicateKey(), res.Dup != nil, ref, refDup, body)
		}
	})
}

// firstBeyondJSON is the offset of the bracket opening level limit+1, read
// with encoding/json's tokenizer (-1 when the value is not that deep or
// not valid before it).
func firstBeyondJSON(body []byte, limit int) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	d := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return -1
		}
		if delim, ok := tok.(json.Delim); ok {
			switch delim {
			case '[', '{':
				if d++; d > limit {
					return int(dec.InputOffset()) - 1
				}
			default:
				d--
			}
		}
	}
}
