package policies

import (
	"net"
	"regexp"
	"slices"
	"strings"
)

// hostName is a DNS name a request's Host may carry: labels of letters,
// digits and hyphens, separated by dots.
var hostName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*\.?$`)

// listenGuards checks the listen block's request guards and limits.
func (v *validator) listenGuards(l *listenFile) {
	for _, h := range l.AllowedHosts {
		if hostName.MatchString(h) || net.ParseIP(strings.Trim(h, "[]")) != nil {
			continue
		}
		v.errorf("listen.allowed_hosts", "%q is not a host name: write names without a scheme, port or path, "+
			"e.g. [\"sidecar.internal\"]", h)
	}
	if len(l.AllowedHosts) > 0 && !deref(l.AllowRemote) {
		v.errorf("listen.allowed_hosts", "names other than the bound address and localhost are only for a "+
			"control API reachable from other hosts: set allow_remote = true (and a token), or remove allowed_hosts")
	}
	v.atLeast("listen.max_connections", l.MaxConnections, 1)
	v.duration("listen.body_read_timeout", l.BodyReadTimeout, false)
}

// ingressGuards checks the ingress block's token and limits.
func (v *validator) ingressGuards(in *ingressFile) {
	if weakToken(deref(in.Token)) {
		v.errorf("ingress.token", "must be at least 16 characters without spaces or line breaks "+
			"(e.g. the output of openssl rand -hex 16)")
	}
	v.atLeast("ingress.max_connections", in.MaxConnections, 1)
	v.duration("ingress.body_read_timeout", in.BodyReadTimeout, false)
}

// Equal reports whether two listen blocks are the same.
func (l Listen) Equal(o Listen) bool {
	return l.Address == o.Address && l.AllowRemote == o.AllowRemote && l.Token == o.Token &&
		l.TokenScope == o.TokenScope && slices.Equal(l.AllowedHosts, o.AllowedHosts) &&
		l.MaxConnections == o.MaxConnections && l.BodyReadTimeout == o.BodyReadTimeout
}
