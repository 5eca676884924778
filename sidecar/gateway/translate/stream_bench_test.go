package translate

import (
	"path/filepath"
	"testing"
)

// The cost of converting one event, over the documented tool-use streams
// (text pieces, then a tool call's argument pieces).

// benchmarkStream converts the events of a golden upstream again and again
// and reports the time and allocations per event.
func benchmarkStream(b *testing.B, direction, name string) {
	var c streamCase
	for _, sc := range streamCases(b, direction) {
		if filepath.Base(sc.dir) == name {
			c = sc
		}
	}
	events := splitStreamEvents(c.upstream)
	if len(events) == 0 {
		b.Fatalf("no events in testdata/streams/%s/%s", direction, name)
	}
	size := 0
	for _, e := range events {
		size += len(e.data)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		s := newGoldenStream(direction, c.request)
		out = out[:0]
		for _, e := range events {
			var err error
			if out, err = s.Event(out, e.name, e.data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

func BenchmarkStreamMessagesToChat(b *testing.B) {
	benchmarkStream(b, "messages_to_chat", "tool_use")
}

func BenchmarkStreamChatToMessages(b *testing.B) {
	benchmarkStream(b, "chat_to_messages", "parallel_tool_calls")
}
