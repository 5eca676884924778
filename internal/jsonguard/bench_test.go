package jsonguard

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// benchBody is a chat request of about 100 KiB: many messages, escapes.
func benchBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o","stream":false,"max_tokens":512,"messages":[`)
	for b.Len() < 100<<10 {
		b.WriteString(`{"role":"user","content":"Summarise the \"report\" below in three lines.\nIt has numbers 1.5e3, -2 and unicode \u00e9 \ud83d\ude00."},`)
	}
	b.WriteString(`{"role":"user","content":"go"}],"temperature":0.2}`)
	return []byte(b.String())
}

// BenchmarkScan compares the guard with the validators it stands before.
func BenchmarkScan(b *testing.B) {
	body := benchBody()
	for _, v := range []struct {
		name  string
		valid func([]byte) bool
	}{
		{"jsonguard", func(d []byte) bool { _, err := Scan(d, MaxDepth); return err == nil }},
		{"gjson.ValidBytes", gjson.ValidBytes},
		{"encoding-json.Valid", json.Valid},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if !v.valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
