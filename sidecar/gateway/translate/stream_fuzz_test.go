package translate

import (
	"testing"
)

// Fuzz targets: any sequence of events, split from the fuzz bytes as a
// text/event-stream, must convert without a panic into events whose data
// is valid JSON and whose order follows the agent's grammar, ending once.
// A byte-level mutator seldom moves whole events, so an input may also
// pick its events' order: with picks, the events sent are events[p % n]
// for each byte p, in turn (reordered, repeated, left out).

// streamFuzzRequests are the agent's requests a fuzz input chooses between.
var streamFuzzRequests = [2][]byte{
	[]byte(`{"model":"m","stream":true}`),
	[]byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`),
}

// fuzzConvertStream runs s over the events of stream, in the order picks
// chooses if any, as the gateway would: it stops at the first error.
func fuzzConvertStream(s Stream, stream, picks []byte) []byte {
	events := splitStreamEvents(stream)
	if len(picks) > 0 && len(events) > 0 {
		chosen := make([]streamTestEvent, 0, len(picks))
		for _, p := range picks {
			chosen = append(chosen, events[int(p)%len(events)])
		}
		events = chosen
	}
	var out []byte
	for _, e := range events {
		var err error
		if out, err = s.Event(out, e.name, e.data); err != nil {
			break
		}
	}
	return out
}

// addStreamSeeds adds the golden upstreams of a direction, with and
// without include_usage, and their events in other orders (a byte-level
// mutator seldom moves whole events): all streams' events reversed, and
// each stream's events rotated by one.
func addStreamSeeds(f *testing.F, direction string) {
	var all []streamTestEvent
	for _, c := range streamCases(f, direction) {
		f.Add(c.upstream, false, []byte(nil))
		f.Add(c.upstream, true, []byte{0, 2, 1, 3, 4, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
		events := splitStreamEvents(c.upstream)
		all = append(all, events...)
		if len(events) > 1 {
			f.Add(joinStreamEvents(append(events[1:len(events):len(events)], events[0])), true, []byte(nil))
			f.Add(joinStreamEvents(append([]streamTestEvent{events[len(events)-1]}, events[:len(events)-1]...)), false, []byte(nil))
		}
	}
	reversed := make([]streamTestEvent, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		reversed = append(reversed, all[i])
	}
	f.Add(joinStreamEvents(reversed), true, []byte(nil))
	f.Add(joinStreamEvents(all), false, []byte{0, 1, 2, 3, 200, 201, 202})
}

func FuzzMessagesToChatStream(f *testing.F) {
	addStreamSeeds(f, "messages_to_chat")
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"\\u0000\"}}\n\n"), true, []byte(nil))
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{}}\n\ndata: {\"type\":\"message_stop\"}\n\n"), false, []byte{1, 0, 1})
	f.Fuzz(func(t *testing.T, stream []byte, withUsage bool, picks []byte) {
		request := streamFuzzRequests[0]
		if withUsage {
			request = streamFuzzRequests[1]
		}
		s := newMessagesToChatStream(request)
		out := fuzzConvertStream(s, stream, picks)
		if err := checkChatStreamGrammar(splitStreamEvents(out), s.Done(), withUsage); err != nil {
			t.Fatalf("%v\ninput (picks %v):\n%s\noutput:\n%s", err, picks, stream, out)
		}
	})
}

func FuzzChatToMessagesStream(f *testing.F) {
	addStreamSeeds(f, "chat_to_messages")
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{\"}},{\"id\":\"b\"}]}}]}\n\ndata: [DONE]\n\n"), false, []byte(nil))
	f.Add([]byte("data: {\"error\":\"x\"}\n\n"), false, []byte(nil))
	f.Fuzz(func(t *testing.T, stream []byte, withUsage bool, picks []byte) {
		request := streamFuzzRequests[0]
		if withUsage {
			request = streamFuzzRequests[1]
		}
		s := newChatToMessagesStream(request)
		out := fuzzConvertStream(s, stream, picks)
		if err := checkMessagesStreamGrammar(splitStreamEvents(out), s.Done()); err != nil {
			t.Fatalf("%v\ninput (picks %v):\n%s\noutput:\n%s", err, picks, stream, out)
		}
	})
}
