package policies

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// minRequestBytes is the smallest gateway.max_request_bytes.
const minRequestBytes = 1024

// keptFields are the request fields drop_fields may not name, and why.
var keptFields = func() map[string]string {
	const same = "; without it the request would no longer be the same request"
	asked := "it holds what the model is asked" + same
	return map[string]string{
		"model":    "the sidecar sets it to this model's name",
		"stream":   "it says whether the agent reads the answer as a stream" + same,
		"messages": asked,
		"input":    asked,
		"prompt":   asked,
	}
}()

// model checks one model block (with defaults applied) and its references
// to breakers and other models.
func (v *validator) model(label string, m *modelFile, fc *fileConfig) {
	key := "model." + label
	providers := []string{ProviderOpenAI, ProviderAnthropic}
	switch {
	case m.Provider == nil:
		v.required(key+".provider", `the wire format the model speaks, "openai" or "anthropic", e.g. provider = "openai"`)
	case !slices.Contains(providers, *m.Provider):
		hint := didYouMean(*m.Provider, providers)
		if hint == "" {
			hint = `; an OpenAI-compatible server (vLLM, Ollama, LiteLLM, …) is "openai" with its base_url`
		}
		v.errorf(key+".provider", `must be "openai" or "anthropic", got %q%s`, *m.Provider, hint)
	}
	v.baseURL(key+".base_url", m)

	if k := deref(m.APIKey); strings.ContainsAny(k, "\r\n") {
		// The value is a secret: say what is wrong, never show it.
		v.errorf(key+".api_key", "contains a line break: remove it (a key read from a file often ends with one)")
	}
	for _, h := range sortedKeys(m.Headers) {
		switch {
		case !validHeaderName(h):
			v.errorf(key+".headers", "%q is not a valid HTTP header name: use letters, digits and dashes, e.g. %q",
				h, "OpenAI-Organization")
		case strings.EqualFold(h, "Host"):
			v.errorf(key+".headers", "%q cannot be set: the sidecar sends the host of base_url", h)
		case strings.EqualFold(h, "Content-Length"):
			v.errorf(key+".headers", "%q cannot be set: the sidecar sets it to the length of the body it sends, "+
				"which differs from the agent's when fields are rewritten", h)
		case strings.ContainsAny(m.Headers[h], "\r\n"):
			// The value is a secret: name the header, never the value.
			v.errorf(key+".headers", "the value of header %q contains a line break", h)
		}
	}

	v.modelName(key+".name", label, m.Name, fc.Model)
	v.breakerRef(key+".breaker", m.Breaker, fc.Breaker)

	v.duration(key+".timeout", m.Timeout, false)
	v.duration(key+".first_byte_timeout", m.FirstByteTimeout, false)
	v.duration(key+".stream_idle_timeout", m.StreamIdleTimeout, false)
	total, err1 := time.ParseDuration(deref(m.Timeout))
	first, err2 := time.ParseDuration(deref(m.FirstByteTimeout))
	if err1 == nil && err2 == nil && total > 0 && first > total {
		if v.pos.written(key + ".first_byte_timeout") {
			v.errorf(key+".first_byte_timeout", "first_byte_timeout (%s) is longer than timeout (%s): the first byte is "+
				"awaited within the whole call; make it at most %s", first, total, total)
		} else {
			v.errorf(key+".timeout", "timeout (%s) is shorter than first_byte_timeout (%s, its default): the first byte is "+
				"awaited within the whole call; set first_byte_timeout to at most %s", total, first, total)
		}
	}

	v.modelFallback(key+".fallback", label, m, m.Fallback, fc.Model)
	v.modelFallback(key+".context_fallback", label, m, m.ContextFallback, fc.Model)
	v.atLeast(key+".max_tokens", m.MaxTokens, 0)
	v.atLeast(key+".max_concurrent", m.MaxConcurrent, 0)
	v.atLeast(key+".rpm", m.RPM, 0)
	v.duration(key+".queue_timeout", m.QueueTimeout, false)
	if m.QueueTimeout != nil && deref(m.MaxConcurrent) == 0 && deref(m.RPM) == 0 {
		v.errorf(key+".queue_timeout", "bounds the wait of a request over max_concurrent or rpm, and neither is set: "+
			"set one of them, or remove queue_timeout")
	}
	if e := m.EmbeddingSpace; e != nil && strings.TrimSpace(*e) == "" {
		v.errorf(key+".embedding_space", "must not be empty: remove it to make only this model (%s) interchangeable with itself", label)
	}
	if f := m.MaxTokensField; f != nil {
		switch {
		case deref(m.Provider) == ProviderAnthropic:
			v.errorf(key+".max_tokens_field", "an anthropic model takes its cap in max_tokens only: remove max_tokens_field")
		case !slices.Contains(MaxTokensFields, *f):
			v.errorf(key+".max_tokens_field", `must be "max_tokens" or "max_completion_tokens" (OpenAI's reasoning models), got %q%s`,
				*f, didYouMean(*f, MaxTokensFields))
		case slices.Contains(m.DropFields, *f):
			v.errorf(key+".max_tokens_field", "%q is also in drop_fields, so the cap would never be sent: remove it from one of them", *f)
		}
	}

	for i, f := range m.DropFields {
		switch {
		case strings.TrimSpace(f) == "":
			v.errorf(key+".drop_fields", "element %d is empty: remove it", i+1)
		case slices.Contains(m.DropFields[:i], f):
			v.errorf(key+".drop_fields", "%q is listed twice: remove one", f)
		case keptFields[f] != "":
			v.errorf(key+".drop_fields", "%q cannot be dropped: %s", f, keptFields[f])
		}
	}
	if m.Price != nil {
		v.price(key+".price", m.Price)
	}
	degrade := []string{DegradeEmpty, DegradeInvalidJSON}
	for i, d := range m.DegradeOn {
		switch {
		case !slices.Contains(degrade, d):
			v.errorf(key+".degrade_on", `element %d must be "empty" or "invalid_json", got %q%s`, i+1, d, didYouMean(d, degrade))
		case slices.Contains(m.DegradeOn[:i], d):
			v.errorf(key+".degrade_on", "%q is listed twice: remove one", d)
		}
	}
}

// price checks a model's price block: input and output are required, and
// every price is 0 or more.
func (v *validator) price(key string, p *priceFile) {
	if p.Input == nil {
		v.required(key+".input", "US dollars per million input tokens, e.g. input = 2.50")
	}
	if p.Output == nil {
		v.required(key+".output", "US dollars per million output tokens, e.g. output = 10.00 (0 for an embeddings model)")
	}
	for _, f := range []struct {
		name string
		val  *float64
	}{{"input", p.Input}, {"output", p.Output}, {"cached_input", p.CachedInput}, {"cache_write", p.CacheWrite}} {
		if f.val != nil && *f.val < 0 && v.pos.written(key+"."+f.name) {
			v.errorf(key+"."+f.name, "must be 0 or more (US dollars per million tokens), got %s",
				strconv.FormatFloat(*f.val, 'g', -1, 64))
		}
	}
}

// baseURL checks a model's base_url: an http(s) base URL without
// credentials, written the way the provider's SDKs take it.
func (v *validator) baseURL(key string, m *modelFile) {
	if m.BaseURL == nil || !v.pos.written(key) {
		return // the provider's default, or none for an unknown provider
	}
	provider := deref(m.Provider)
	example, known := defaultBaseURLs[provider]
	if !known {
		example = defaultBaseURLs[ProviderOpenAI]
	}
	s := *m.BaseURL
	switch {
	case s == "" && known:
		v.errorf(key, "must not be empty: remove it to use %s's %q", provider, example)
	case s == "":
		v.errorf(key, "must not be empty: remove it to use the provider's default")
	default:
		if problem := checkBaseURL(s, example); problem != "" {
			v.errorf(key, "%s", problem)
			return
		}
		// Anthropic's SDKs add /v1/messages to their base URL themselves,
		// and so does the sidecar: a base URL ending in /v1 doubles it.
		u, _ := url.Parse(s)
		if provider == ProviderAnthropic && strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1") {
			fixed := strings.TrimSuffix(strings.TrimRight(redactURL(s), "/"), "/v1")
			v.errorf(key, "%q ends in /v1, but the sidecar adds /v1/messages itself (as Anthropic's SDKs do): use %q",
				redactURL(s), fixed)
		}
	}
}

// modelName checks the model name sent upstream. A name that is another
// model's label would make a request for it ambiguous.
func (v *validator) modelName(key, label string, name *string, models map[string]*modelFile) {
	if name == nil || !v.pos.written(key) {
		return // the label, valid as a label
	}
	n := *name
	switch {
	case n == "":
		v.errorf(key, "must not be empty: remove it to send the label %q", label)
	case strings.IndexFunc(n, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		v.errorf(key, "%q must not contain whitespace or control characters: give the model's name as the provider "+
			"knows it, e.g. %q", n, "gpt-4o-mini")
	case n != label && models[n] != nil && v.pos.policy["model."+label] == v.pos.policy["model."+n]:
		// (Between a local model and one from Consul KV, policyModels
		// reports it at the policy's block.)
		v.errorf(key, "%q is the label of another model block (at %s): a request for %q could mean either model; "+
			"give that block another label (it can keep sending %q with name = %q)",
			n, rangeString(v.pos.ranges["model."+n]), n, n, n)
	}
}

// modelFallback checks that a model's fallback (or context_fallback),
// target, names another model (of either provider: a request crossing
// providers is translated). Cycles are reported by
// fallbackCycles.
func (v *validator) modelFallback(key, label string, m *modelFile, target *string, models map[string]*modelFile) {
	if target == nil {
		return
	}
	name := *target
	next := models[name]
	switch {
	case name == "" && strings.HasSuffix(key, ".context_fallback"):
		v.errorf(key, "must not be empty: remove it to pass a \"context too long\" refusal to the agent")
	case name == "":
		v.errorf(key, "must not be empty: remove it to end the chain at this model")
	case next == nil:
		defined := sortedKeys(models)
		v.errorf(key, "no model block named %q; defined: %s%s", name, strings.Join(defined, ", "), didYouMean(name, defined))
	case name == label:
		// A cycle: reported by fallbackCycles.
	}
}

func (v *validator) gateway(g *gatewayFile) {
	if n := g.MaxRequestBytes; n != nil && *n < minRequestBytes {
		v.errorf("gateway.max_request_bytes", "must be at least %d (1 KiB), got %d; the default is %d (10 MiB)",
			minRequestBytes, *n, defaultMaxRequestBytes)
	}
}
