package gateway

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// Usage is what one answer cost, as the model that served it reported it.
type Usage struct {
	Model       string // the label the agent asked for
	ServedBy    string // the label of the model that answered (a degraded answer counts against it)
	Input       int64  // input tokens not read from a cache
	Output      int64  // output tokens (reasoning included)
	CachedInput int64  // input tokens read from the provider's cache
	CacheWrite  int64  // input tokens written to the cache (Anthropic's cache_creation_input_tokens; 0 for OpenAI)
}

// UsageTotals are the tokens a model's answers reported, summed, as
// status output shows them.
type UsageTotals struct {
	Input       int64 `json:"input"`
	Output      int64 `json:"output"`
	CachedInput int64 `json:"cached_input"`
	CacheWrite  int64 `json:"cache_write"`
}

// maxReported bounds one count a model reports (a trillion tokens, far
// beyond any context window), so a broken or hostile upstream cannot
// overflow the totals or make them go down.
const maxReported = 1 << 40

// tokenCount is a count of a usage object, bounded to [0, maxReported];
// ok is false when it is not a number (absent, null).
func tokenCount(v gjson.Result) (n int64, ok bool) {
	if v.Type != gjson.Number {
		return 0, false
	}
	return min(max(v.Int(), 0), maxReported), true
}

// usageCounts fills the counts of u from a usage object of an answer of
// this kind (the upstream's kind, before any translation), by the
// provider's field names, in one pass over the object. Counts the object
// does not have keep their value in u: Anthropic's message_delta counts
// are cumulative and may leave some out, so those present replace the
// ones message_start reported.
func usageCounts(kind string, obj gjson.Result, u *Usage) {
	var input, cached, output, cacheWrite int64
	var hasInput, hasCached, hasOutput, hasWrite bool
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens", "input_tokens":
			input, hasInput = tokenCount(v)
		case "completion_tokens", "output_tokens":
			output, hasOutput = tokenCount(v)
		case "prompt_tokens_details", "input_tokens_details":
			cached, hasCached = tokenCount(v.Get("cached_tokens"))
		case "cache_read_input_tokens":
			cached, hasCached = tokenCount(v)
		case "cache_creation_input_tokens":
			cacheWrite, hasWrite = tokenCount(v)
		}
		return true
	})
	switch kind {
	case kindChat, kindCompletion, kindResponse:
		// OpenAI's input count includes the cached tokens.
		u.Input, u.CachedInput, u.Output = max(input-cached, 0), cached, output
	case kindEmbedding:
		u.Input = input
	case kindMessage:
		for _, f := range [...]struct {
			has   bool
			n     int64
			field *int64
		}{{hasInput, input, &u.Input}, {hasCached, cached, &u.CachedInput}, {hasWrite, cacheWrite, &u.CacheWrite},
			{hasOutput, output, &u.Output}} {
			if f.has {
				*f.field = f.n
			}
		}
	}
}

// usageObject returns the usage object found at path of a JSON value
// read in place: gjson skips the values before it without recursing,
// and the object itself is bounded by the iterative scan before its
// fields are read. ok is false when there is none (or it is null).
func usageObject(data []byte, path string) (gjson.Result, bool) {
	if len(data) == 0 || data[0] != '{' {
		data = bytes.TrimLeft(data, " \t\r\n")
		if len(data) == 0 || data[0] != '{' {
			return gjson.Result{}, false
		}
	}
	obj := gjson.GetBytes(data, path)
	if !obj.IsObject() {
		return gjson.Result{}, false
	}
	// Scanned where it is in data (Index; 0 when unknown), not copied again.
	var raw []byte
	if obj.Index > 0 {
		raw = data[obj.Index : obj.Index+len(obj.Raw)]
	} else {
		raw = []byte(obj.Raw)
	}
	if _, err := jsonguard.Scan(raw, jsonguard.MaxDepth); err != nil {
		return gjson.Result{}, false
	}
	return obj, true
}

// wholeUsage reads the usage of a successful whole answer of this kind
// (the upstream's). ok is false when the answer reports none.
func wholeUsage(kind string, body []byte) (u Usage, ok bool) {
	if kind == kindCount {
		return u, false // a token count is not an answer the model bills
	}
	obj, ok := usageObject(body, "usage")
	if !ok {
		return u, false
	}
	usageCounts(kind, obj, &u)
	return u, true
}

// streamUsage gathers the usage a stream's upstream events report, as
// they pass.
type streamUsage struct {
	kind string // of the upstream events
	u    Usage
	seen bool
}

// see reads the usage an upstream event reports, if any, and says
// whether it is OpenAI's extra usage chunk (no choices, a usage object):
// the one the gateway asked for on behalf of an agent that did not.
func (s *streamUsage) see(ev event) (usageChunk bool) {
	switch s.kind {
	case kindChat, kindCompletion:
		// Cheap test first: with include_usage every chunk has "usage"
		// (null but for the last), without it none has.
		if !bytes.Contains(ev.data, []byte(`"usage"`)) {
			return false
		}
		obj, ok := usageObject(ev.data, "usage")
		if !ok {
			return false
		}
		usageCounts(s.kind, obj, &s.u)
		s.seen = true
		choices := gjson.GetBytes(ev.data, "choices")
		return choices.IsArray() && !choices.Get("0").Exists()
	case kindResponse:
		switch eventType(ev) {
		case "response.completed", "response.incomplete", "response.failed":
			if obj, ok := usageObject(ev.data, "response.usage"); ok {
				usageCounts(s.kind, obj, &s.u)
				s.seen = true
			}
		}
	case kindMessage:
		path := ""
		switch eventType(ev) {
		case "message_start":
			path = "message.usage"
		case "message_delta":
			path = "usage"
		}
		if path != "" {
			if obj, ok := usageObject(ev.data, path); ok {
				usageCounts(s.kind, obj, &s.u)
				s.seen = true
			}
		}
	}
	return false
}

// eventType is an event's name, else the "type" of its data.
func eventType(ev event) string {
	if ev.name != "" {
		return ev.name
	}
	return gjson.GetBytes(ev.data, "type").Str
}

// reportUsage counts an answer's usage against the model that served it,
// records it on the attempt's span (which ends after) and passes it to
// Options.OnUsage, without locks held.
func (c *call) reportUsage(servedBy string, u Usage) {
	u.Model, u.ServedBy = c.first.Label, servedBy
	c.try.setUsage(u)
	c.g.count(servedBy, func(s *modelStats) {
		s.input += u.Input
		s.output += u.Output
		s.cachedInput += u.CachedInput
		s.cacheWrite += u.CacheWrite
	})
	if c.g.opts.OnUsage != nil {
		c.g.opts.OnUsage(u)
	}
}
