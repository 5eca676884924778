package policies

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
