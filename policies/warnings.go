package policies

import (
	"fmt"
	"sort"
)

// Warnings lists what in a valid configuration probably does not do what
// was meant: a model whose api_key is set but empty (an environment
// variable that is not set, usually) forwards the agent's own credentials;
// an upstream whose ingress_token is set but empty sends no token.
func (c *Config) Warnings() []string {
	var labels []string
	for label, m := range c.Models {
		if m.APIKeyEmpty {
			labels = append(labels, label)
		}
	}
	sort.Strings(labels)
	out := make([]string, 0, len(labels))
	for _, label := range labels {
		out = append(out, fmt.Sprintf("model %q: api_key is set but empty (is the environment variable it reads set?); "+
			"the agent's own credentials are forwarded to %s instead", label, c.Models[label].BaseURL))
	}
	return append(out, c.upstreamWarnings()...)
}
