package policies

import (
	"fmt"
	"sort"
)

// MetaAgentPort is the service meta key a sidecar registers when its
// ingress is enabled: the registration's address and port are then the
// ingress's, and the key holds the agent's own port. An upstream's
// ingress_token is sent only to instances that carry it.
const MetaAgentPort = "agent_port"

// upstreamIngressToken checks an upstream's ingress_token: it must be a
// value some ingress.token can have.
func (v *validator) upstreamIngressToken(key string, u *upstreamFile) {
	if weakToken(deref(u.IngressToken)) {
		v.errorf(key+".ingress_token", "must be at least 16 characters without spaces or line breaks, as "+
			"ingress.token is: set it to the ingress.token of the sidecars this upstream reaches")
	}
}

// upstreamWarnings lists the upstreams whose ingress_token is set but empty
// (an environment variable that is not set, usually): they send no token,
// and ingresses that require one refuse their calls.
func (c *Config) upstreamWarnings() []string {
	var names []string
	for name, u := range c.Upstreams {
		if u.IngressTokenEmpty {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, name := range names {
		out = append(out, fmt.Sprintf("upstream %q: ingress_token is set but empty (is the environment variable it "+
			"reads set?); no token is sent, and sidecar ingresses that require one answer its calls with 401", name))
	}
	return out
}
