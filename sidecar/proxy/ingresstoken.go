package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// Callers of another sidecar's ingress (a /call/ upstream whose instances
// are sidecars, an ingress's fallback upstream, a peer taking over a task)
// send HeaderIngressToken: the upstream's ingress_token, or for peers this
// sidecar's own ingress.token. The token goes only to targets that are
// ingresses: Consul instances whose registration carries the agent_port
// meta (see the sidecar's serviceFor), the static URL of an upstream that has an
// ingress_token, and peers.

// ingressScheme is the auth scheme of an ingress's WWW-Authenticate on a
// 401: by it a calling sidecar tells an ingress that refused its token
// from any other 401.
const ingressScheme = "Sidecar-Ingress-Token"

// HeaderIngressToken carries ingress.token on a request to an ingress. A
// sidecar that calls another's ingress (a dispatcher's /call/ to a service
// with an ingress, a peer taking over a task) sends it; the ingress removes
// it before the task goes on.
const HeaderIngressToken = "X-Sidecar-Ingress-Token"

// IngressChallenge is the WWW-Authenticate header of an ingress's 401.
const IngressChallenge = ingressScheme + ` realm="ingress"`

// errIngressToken is the error type of a call a sidecar's ingress refused
// for its token: the calling sidecar's configuration must change.
const errIngressToken = "ingress_token_refused"

// peerTokenKey names, in messages, the key of the token sent to peers.
const peerTokenKey = "ingress.token"

// isIngressInstance reports whether a Consul instance is a sidecar's
// ingress.
func isIngressInstance(in discovery.Instance) bool {
	_, ok := in.Meta[policies.MetaAgentPort]
	return ok
}

// refusedByIngress reports whether resp is a sidecar ingress's refusal of
// the token it was sent (or of its absence).
func refusedByIngress(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	scheme, _, _ := strings.Cut(resp.Header.Get("WWW-Authenticate"), " ")
	return strings.EqualFold(scheme, ingressScheme)
}

// tokenSent is the token an attempt sends to tg: the stage's token when tg
// is an ingress, else "".
func tokenSent(st stage, tg target) string {
	if tg.ingress {
		return st.ingressToken
	}
	return ""
}

// tokenRefusal says, without the token, why the ingress of tg refused a
// call of stage st and what to set.
func tokenRefusal(st stage, tg target) string {
	peer := st.tokenKey == peerTokenKey
	switch {
	case tokenSent(st, tg) != "" && peer:
		return fmt.Sprintf("peer %s refused this sidecar's ingress.token: the sidecars of one service must all "+
			"have the same ingress.token; set the same value on each", tg.instance)
	case tokenSent(st, tg) != "":
		return fmt.Sprintf("upstream %q: instance %s, a sidecar's ingress, refused the token of this sidecar's "+
			"upstream %q ingress_token: set it to the ingress.token of the sidecars the upstream reaches",
			st.name, tg.instance, st.name)
	case st.ingressToken != "":
		what := fmt.Sprintf("upstream %q: instance %s", st.name, tg.instance)
		if peer {
			what = "peer " + tg.instance
		}
		return fmt.Sprintf("%s requires a sidecar ingress token, but its Consul registration lacks the %s meta "+
			"that marks a sidecar's ingress, so %s was not sent to it: register it through a sidecar with an "+
			"ingress block", what, policies.MetaAgentPort, st.tokenKey)
	case peer:
		return fmt.Sprintf("peer %s requires an ingress token and this sidecar's ingress.token is not set: "+
			"set the same ingress.token on every sidecar of the service", tg.instance)
	}
	return fmt.Sprintf("upstream %q: instance %s is a sidecar's ingress that requires a token: set ingress_token "+
		"in this sidecar's upstream %q block to the ingress.token of the sidecars it reaches, e.g. "+
		`ingress_token = env("SIDECAR_INGRESS_TOKEN")`, st.name, tg.instance, st.name)
}
