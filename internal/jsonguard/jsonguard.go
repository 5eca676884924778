// Package jsonguard checks untrusted JSON before any recursive parser sees
// it. Scan is an iterative validator: it accepts exactly what
// encoding/json.Valid accepts, refuses values nested deeper than a limit
// (a recursive parser given ten million '[' overflows its stack, a fatal
// error no recover catches), and finds a top-level key that appears twice
// (parsers disagree on which of the two counts). It does not allocate for
// bodies with up to 32 top-level keys, whatever their size.
package jsonguard

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// MaxDepth is the nesting limit the sidecar applies to every JSON body it
// reads: requests, model answers and heartbeats. Real requests nest fewer
// than 20 levels.
const MaxDepth = 128

// maxDepthCap is the largest limit Scan applies; larger ones are lowered to
// it (the open containers are kept in a fixed bit set).
const maxDepthCap = 1024

// Error says why data was refused and where.
type Error struct {
	// Offset is the byte at which the scan stopped.
	Offset int
	// TooDeep is set when the value is nested deeper than Limit.
	TooDeep bool
	// Limit is the nesting limit that applied.
	Limit int
	what  string
}

// TooDeep reports whether err is a scan's refusal of a value nested deeper
// than its limit.
func TooDeep(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.TooDeep
}

func (e *Error) Error() string {
	if e.TooDeep {
		return "nested deeper than " + strconv.Itoa(e.Limit) + " levels of arrays and objects (at byte " +
			strconv.Itoa(e.Offset) + ")"
	}
	return e.what + " at byte " + strconv.Itoa(e.Offset)
}

// Result is what Scan found besides validity.
type Result struct {
	// First is the first byte of the value: '{', '[', '"', 't', 'f', 'n',
	// '-' or a digit.
	First byte
	// Dup is the first top-level key of an object that appears a second
	// time, as written between its quotes (escapes undecoded); nil if none.
	// Keys are compared as encoding/json decodes them, so "model" and
	// "mod\u0065l" are the same key.
	Dup []byte
}

// DuplicateKey is Dup decoded, for a message.
func (r Result) DuplicateKey() string {
	var b []byte
	for i := 0; i < len(r.Dup); {
		var c rune
		c, i = nextRune(r.Dup, i)
		b = utf8.AppendRune(b, c)
	}
	return string(b)
}

// Scan checks that data is one JSON value, with only whitespace around it,
// nested at most maxDepth arrays and objects deep (at most 1024; a limit
// below 1 means MaxDepth). A non-nil error is an *Error.
func Scan(data []byte, maxDepth int) (Result, error) {
	if maxDepth < 1 {
		maxDepth = MaxDepth
	}
	if maxDepth > maxDepthCap {
		maxDepth = maxDepthCap
	}
	var (
		res   Result
		keys  keySet
		open  [maxDepthCap / 64]uint64 // bit set: the container at depth d+1 is an object
		depth int
		n     = len(data)
	)
	fail := func(i int, what string) (Result, error) {
		return res, &Error{Offset: i, Limit: maxDepth, what: what}
	}
	unexpected := func(i int, looking string) (Result, error) {
		if i >= n {
			return fail(i, "unexpected end of JSON "+looking)
		}
		return fail(i, "invalid character "+quoteChar(data[i])+" "+looking)
	}
	inObject := func() bool { return open[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }

	i := skipSpace(data, 0)
	if i < n {
		res.First = data[i]
	}
value:
	if i >= n {
		return unexpected(i, "looking for a value")
	}
	switch c := data[i]; c {
	case '{', '[':
		if depth == maxDepth {
			return res, &Error{Offset: i, TooDeep: true, Limit: maxDepth}
		}
		w, bit := depth/64, uint64(1)<<(depth%64)
		if c == '{' {
			open[w] |= bit
		} else {
			open[w] &^= bit
		}
		depth++
		i = skipSpace(data, i+1)
		if i < n && data[i] == c+2 { // '}' is '{'+2, ']' is '['+2
			depth--
			i++
			goto after
		}
		if c == '{' {
			goto key
		}
		goto value
	case '"':
		end, _, msg := scanString(data, i)
		if msg != "" {
			return fail(end, msg)
		}
		i = end
	case 't':
		if !hasPrefix(data[i:], "true") {
			return fail(literalEnd(data, i, "true"), "invalid literal (expected true)")
		}
		i += 4
	case 'f':
		if !hasPrefix(data[i:], "false") {
			return fail(literalEnd(data, i, "false"), "invalid literal (expected false)")
		}
		i += 5
	case 'n':
		if !hasPrefix(data[i:], "null") {
			return fail(literalEnd(data, i, "null"), "invalid literal (expected null)")
		}
		i += 4
	default:
		end, ok := scanNumber(data, i)
		if !ok {
			return unexpected(end, "looking for a value")
		}
		i = end
	}

after:
	if depth == 0 {
		i = skipSpace(data, i)
		if i < n {
			return fail(i, "invalid character "+quoteChar(data[i])+" after the top-level value")
		}
		return res, nil
	}
	i = skipSpace(data, i)
	if i >= n {
		return unexpected(i, "after an element")
	}
	switch c := data[i]; {
	case c == ',':
		i = skipSpace(data, i+1)
		if inObject() {
			goto key
		}
		goto value
	case c == '}' && inObject(), c == ']' && !inObject():
		depth--
		i++
		goto after
	}
	if inObject() {
		return unexpected(i, "after an object value")
	}
	return unexpected(i, "after an array element")

key:
	if i >= n || data[i] != '"' {
		return unexpected(i, "looking for the beginning of an object key")
	}
	{
		end, escaped, msg := scanString(data, i)
		if msg != "" {
			return fail(end, msg)
		}
		if depth == 1 && res.Dup == nil {
			if k := data[i+1 : end-1]; keys.add(data, i+1, end-1, escaped) {
				res.Dup = k
			}
		}
		i = skipSpace(data, end)
	}
	if i >= n || data[i] != ':' {
		return unexpected(i, "after an object key")
	}
	i = skipSpace(data, i+1)
	goto value
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// literalEnd is where a broken literal starting at i goes wrong.
func literalEnd(data []byte, i int, lit string) int {
	j := 0
	for j < len(lit) && i+j < len(data) && data[i+j] == lit[j] {
		j++
	}
	return i + j
}

// stringByte classifies bytes inside a string: 0 plain, 1 '"', 2 '\\',
// 3 a control character.
var stringByte = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 3
	}
	t['"'], t['\\'] = 1, 2
	return t
}()

// scanString scans the string whose quote is at data[i]. It returns the
// offset after the closing quote, whether the string has escapes, and a
// message if it is not a valid string (then the offset is where).
func scanString(data []byte, i int) (int, bool, string) {
	escaped := false
	for i++; i < len(data); i++ {
		switch stringByte[data[i]] {
		case 0:
			continue
		case 1:
			return i + 1, escaped, ""
		case 3:
			return i, escaped, "invalid character " + quoteChar(data[i]) + " in a string"
		}
		escaped = true
		i++
		if i >= len(data) {
			break
		}
		switch data[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			for k := 0; k < 4; k++ {
				i++
				if i >= len(data) {
					return i, escaped, "unexpected end of JSON in a \\u escape"
				}
				if !isHex(data[i]) {
					return i, escaped, "invalid character " + quoteChar(data[i]) + " in a \\u escape"
				}
			}
		default:
			return i, escaped, "invalid character " + quoteChar(data[i]) + " in a string escape"
		}
	}
	return i, escaped, "unexpected end of JSON in a string"
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans the number at data[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// It returns the offset after it, or where it goes wrong.
func scanNumber(data []byte, i int) (int, bool) {
	n := len(data)
	if i < n && data[i] == '-' {
		i++
	}
	switch {
	case i < n && data[i] == '0':
		i++
	case i < n && '1' <= data[i] && data[i] <= '9':
		for i++; i < n && isDigit(data[i]); i++ {
		}
	default:
		return i, false
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n || !isDigit(data[i]) {
			return i, false
		}
		for i++; i < n && isDigit(data[i]); i++ {
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || !isDigit(data[i]) {
			return i, false
		}
		for i++; i < n && isDigit(data[i]); i++ {
		}
	}
	return i, true
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.QuoteRune(rune(c))
	if c >= 0x80 {
		s = `'\x` + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&0xf, 16) + `'`
	}
	return s
}
