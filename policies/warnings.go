package policies

import (
	"fmt"
	"maps"
	"slices"
)

// Warnings lists what in a valid configuration probably does not do what
// was meant: a model whose api_key is set but empty (an environment
// variable that is not set, usually) forwards the agent's own credentials;
// an upstream whose ingress_token is set but empty sends no token, and
// sidecar ingresses that require one refuse its calls.
func (c *Config) Warnings() []string {
	var out []string
	for _, label := range slices.Sorted(maps.Keys(c.Models)) {
		if m := c.Models[label]; m.APIKeyEmpty {
			out = append(out, fmt.Sprintf("model %q: api_key is set but empty (is the environment variable it reads set?); "+
				"the agent's own credentials are forwarded to %s instead", label, m.BaseURL))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		if c.Upstreams[name].IngressTokenEmpty {
			out = append(out, fmt.Sprintf("upstream %q: ingress_token is set but empty (is the environment variable it "+
				"reads set?); no token is sent, and sidecar ingresses that require one answer its calls with 401", name))
		}
	}
	return out
}
