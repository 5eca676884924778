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

// tokenCount reads one count of a usage object, bounded to [0, maxReported].
func tokenCount(u gjson.Result, path string) int64 {
	return min(max(u.Get(path).Int(), 0), maxReported)
}

// usageCounts fills the counts of u from a usage object of an answer of
// this kind (the upstream's kind, before any translation), by the
// provider's field names.
func usageCounts(kind string, obj gjson.Result, u *Usage) {
	switch kind {
	case kindChat, kindCompletion:
		cached := tokenCount(obj, "prompt_tokens_details.cached_tokens")
		u.Input = max(tokenCount(obj, "prompt_tokens")-cached, 0)
		u.CachedInput = cached
		u.Output = tokenCount(obj, "completion_tokens")
	case kindEmbedding:
		u.Input = tokenCount(obj, "prompt_tokens")
	case kindResponse:
		cached := tokenCount(obj, "input_tokens_details.cached_tokens")
		u.Input = max(tokenCount(obj, "input_tokens")-cached, 0)
		u.CachedInput = cached
		u.Output = tokenCount(obj, "output_tokens")
	case kindMessage:
		// message_delta's counts are cumulative and may leave some out:
		// those present replace the ones message_start reported.
		for _, f := range [...]struct {
			path string
			to   *int64
		}{{"input_tokens", &u.Input}, {"cache_read_input_tokens", &u.CachedInput},
			{"cache_creation_input_tokens", &u.CacheWrite}, {"output_tokens", &u.Output}} {
			if v := obj.Get(f.path); v.Type == gjson.Number {
				*f.to = tokenCount(obj, f.path)
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
	if _, err := jsonguard.Scan([]byte(obj.Raw), jsonguard.MaxDepth); err != nil {
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
	if len(ev.data) == 0 || ev.data[0] != '{' {
		return ""
	}
	return gjson.GetBytes(ev.data, "type").Str
}

// reportUsage counts an answer's usage against the model that served it
// and passes it to Options.OnUsage, without locks held.
func (c *call) reportUsage(servedBy string, u Usage) {
	u.Model, u.ServedBy = c.first.Label, servedBy
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
