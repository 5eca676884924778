package jsonguard

import (
	"hash/maphash"
	"unicode/utf16"
	"unicode/utf8"
)

// seed makes key hashes unpredictable, so no body can be made of keys that
// all collide.
var seed = maphash.MakeSeed()

// smallKeys is how many top-level keys keySet holds without allocating.
const smallKeys = 32

// span is one key: data[start:end] between its quotes, and its hash.
type span struct {
	hash       uint64
	start, end int
	escaped    bool
}

// keySet holds the top-level keys seen so far: the first 32 in place, the
// rest in a map (only bodies with many top-level keys allocate).
type keySet struct {
	small [smallKeys]span
	n     int
	more  map[uint64][]span
}

// add records the key data[start:end] and reports whether an equal key was
// recorded before.
func (s *keySet) add(data []byte, start, end int, escaped bool) bool {
	k := span{start: start, end: end, escaped: escaped, hash: keyHash(data[start:end], escaped)}
	for _, o := range s.small[:s.n] {
		if o.hash == k.hash && sameKey(data, o, k) {
			return true
		}
	}
	for _, o := range s.more[k.hash] {
		if sameKey(data, o, k) {
			return true
		}
	}
	if s.n < smallKeys {
		s.small[s.n] = k
		s.n++
		return false
	}
	if s.more == nil {
		s.more = make(map[uint64][]span)
	}
	s.more[k.hash] = append(s.more[k.hash], k)
	return false
}

// keyHash hashes a key as encoding/json decodes it.
func keyHash(raw []byte, escaped bool) uint64 {
	if !escaped && utf8.Valid(raw) {
		return maphash.Bytes(seed, raw) // decodes to itself
	}
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [utf8.UTFMax]byte
	for i := 0; i < len(raw); {
		var r rune
		r, i = nextRune(raw, i)
		_, _ = h.Write(buf[:utf8.EncodeRune(buf[:], r)])
	}
	return h.Sum64()
}

// sameKey reports whether two keys decode to the same string.
func sameKey(data []byte, a, b span) bool {
	ka, kb := data[a.start:a.end], data[b.start:b.end]
	if !a.escaped && !b.escaped && string(ka) == string(kb) {
		return true
	}
	i, j := 0, 0
	for i < len(ka) && j < len(kb) {
		var ra, rb rune
		ra, i = nextRune(ka, i)
		rb, j = nextRune(kb, j)
		if ra != rb {
			return false
		}
	}
	return i == len(ka) && j == len(kb)
}

// nextRune decodes the rune of a valid JSON string's contents (no quotes)
// at s[i] and returns it and the offset after it, as encoding/json
// decodes: escapes resolved, a surrogate pair joined, a lone surrogate and
// a byte that is not UTF-8 becoming U+FFFD.
func nextRune(s []byte, i int) (rune, int) {
	if s[i] != '\\' {
		if s[i] < utf8.RuneSelf {
			return rune(s[i]), i + 1
		}
		r, size := utf8.DecodeRune(s[i:])
		return r, i + size // RuneError, 1 for a byte that is not UTF-8
	}
	switch s[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
	default: // '"', '\\', '/'
		return rune(s[i+1]), i + 2
	}
	r := hex4(s[i+2 : i+6])
	i += 6
	if !utf16.IsSurrogate(r) {
		return r, i
	}
	if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
		if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != utf8.RuneError {
			return dec, i + 6
		}
	}
	return utf8.RuneError, i
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
