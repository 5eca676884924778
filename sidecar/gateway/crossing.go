package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway/translate"
)

// hop is how a request reaches one model of its chain: the endpoint it is
// sent to, the body sent, and the translation between the agent's wire
// format and the model's (translate.None for a model of the agent's own
// provider, whose request is only rewritten).
type hop struct {
	ep   endpoint
	dir  translate.Direction
	body []byte
	// hideUsage: the gateway asked this OpenAI stream for its usage chunk
	// on behalf of an agent that did not; the chunk is not relayed.
	hideUsage bool
}

// crosses reports whether the hop goes to a model of the other provider.
func (h hop) crosses() bool { return h.dir != translate.None }

// targetEndpoints are the endpoints a translated request is sent to.
var targetEndpoints = map[string]endpoint{
	translate.KindChat:    endpoints["/v1/chat/completions"],
	translate.KindMessage: endpoints["/v1/messages"],
}

// hopTo prepares the request for model m. A non-empty reason says why m
// cannot serve it (its embeddings are another vector space, or the request
// cannot be translated faithfully for its provider): the chain skips m.
func (c *call) hopTo(m *policies.Model) (hop, string) {
	if c.ep.kind == kindEmbedding && m != c.first && m.Space() != c.first.Space() {
		return hop{}, "its embeddings are not interchangeable with " + c.first.Label + "'s (embedding space " +
			m.Space() + ", not " + c.first.Space() + "); give both the same embedding_space if they are"
	}
	if m.Provider == c.ep.provider {
		body, err := rewrite(c.req.body, m, c.ep, c.req.addUsage)
		if err != nil {
			return hop{}, "the request could not be rewritten: " + err.Error()
		}
		// Unless drop_fields took it out again.
		hide := c.req.addUsage && gjson.GetBytes(body, "stream_options.include_usage").Type == gjson.True
		return hop{ep: c.ep, body: body, hideUsage: hide}, ""
	}
	dir, why := translate.For(c.ep.kind, m.Provider)
	if dir == translate.None {
		if why == "" {
			why = "no translation to " + m.Provider
		}
		return hop{}, why
	}
	translated, err := dir.Request(c.req.body, translate.Options{MaxTokens: m.MaxTokens})
	if err != nil {
		var u *translate.Untranslatable
		if errors.As(err, &u) {
			return hop{}, "the request cannot be translated for " + m.Provider + ": " + u.Reason
		}
		return hop{}, "the request could not be translated for " + m.Provider + ": " + err.Error()
	}
	ep := targetEndpoints[dir.TargetKind()]
	body, err := rewrite(translated, m, ep, false)
	if err != nil {
		return hop{}, "the translated request could not be rewritten: " + err.Error()
	}
	return hop{ep: ep, dir: dir, body: body}, ""
}

// agentHeaderPrefixes start the request headers of one provider's API
// (versions, betas, organisations, projects): never sent to the other.
var agentHeaderPrefixes = []string{"Openai-", "Anthropic-"}

// crossHeaders removes from the headers of a translated request the
// agent's credentials (they are for the other provider: sending them
// across would hand one provider's key to the other) and its provider's
// own headers.
func crossHeaders(h http.Header) {
	for _, k := range credentialHeaders {
		h.Del(k)
	}
	for k := range h {
		for _, p := range agentHeaderPrefixes {
			if strings.HasPrefix(k, p) {
				delete(h, k)
			}
		}
	}
}

// translateWhole turns a whole answer of a translated hop into the agent's
// shape: a success through the direction's answer translation, an error
// (status >= 300) into the agent's provider's error shape. A success that
// cannot be translated is reported as why (the model's answer is unusable
// for this agent); an error body always translates (one that is not a
// provider's error, or not JSON, is quoted in the message). The
// translators bound the body's nesting themselves before reading it.
func translateWhole(h hop, status int, body, request []byte) (out []byte, why string) {
	if status >= 300 {
		return h.dir.Error(status, body), ""
	}
	out, err := h.dir.Answer(body, request)
	if err != nil {
		return nil, "the answer could not be translated: " + err.Error()
	}
	return out, ""
}
