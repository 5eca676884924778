package policies

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Warnings lists what in a valid configuration probably does not do what
// was meant: a model whose api_key is set but empty (an environment
// variable that is not set, usually) forwards the agent's own credentials;
// a model reached from a model of the other provider without an api_key of
// its own gets no credentials (an agent's are never sent across providers);
// an upstream whose ingress_token is set but empty sends no token, and
// sidecar ingresses that require one refuse its calls; notify blocks that
// health.notify = [] leaves unused, so that isolations notify nobody; a
// budget limiting cost_usd that counts a model without a price.
func (c *Config) Warnings() []string {
	var out []string
	if len(c.Notify) > 0 && len(c.Health.Notify) == 0 {
		out = append(out, fmt.Sprintf("health.notify is []: isolations notify nobody, although notify blocks are "+
			"defined (%s); remove health.notify to notify every one of them, or name the ones to notify",
			strings.Join(slices.Sorted(maps.Keys(c.Notify)), ", ")))
	}
	for _, label := range slices.Sorted(maps.Keys(c.Models)) {
		if m := c.Models[label]; m.APIKeyEmpty {
			out = append(out, fmt.Sprintf("model %q: api_key is set but empty (is the environment variable it reads set?); "+
				"the agent's own credentials are forwarded to %s instead", label, m.BaseURL))
		}
	}
	for _, label := range slices.Sorted(maps.Keys(c.Models)) {
		m := c.Models[label]
		for _, next := range []string{m.Fallback, m.ContextFallback} {
			if n, ok := c.Models[next]; ok && n.Provider != m.Provider && n.APIKey == "" && !n.APIKeyEmpty {
				out = append(out, fmt.Sprintf("model %q: it is a fallback of %q, which speaks %s, but has no api_key; "+
					"an agent's credentials for %s are never sent to %s, so %q answers 401 when the chain reaches it: "+
					"set its api_key", next, label, m.Provider, m.Provider, n.Provider, next))
				break
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		if c.Upstreams[name].IngressTokenEmpty {
			out = append(out, fmt.Sprintf("upstream %q: ingress_token is set but empty (is the environment variable it "+
				"reads set?); no token is sent, and sidecar ingresses that require one answer its calls with 401", name))
		}
	}
	return append(out, c.budgetWarnings()...)
}
