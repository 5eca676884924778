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

// exampleProbeAddress is the probe listener's address in messages: every
// interface, so a kubelet reaches it on the pod IP.
const exampleProbeAddress = "0.0.0.0:7071"

// probeAddress checks listen.probe_address, when set: host:port, and a
// port of its own, apart from the control listener's and the ingress's. It
// may listen on any interface without allow_remote or a token: it answers
// only the agent probes and the sidecar's liveness, and nothing secret.
func (v *validator) probeAddress(fc *fileConfig) {
	addr := deref(fc.Listen.ProbeAddress)
	if addr == "" {
		return
	}
	if _, problem := splitHostPort(addr); problem != "" {
		v.errorf("listen.probe_address", "invalid address %q: %s; use host:port, e.g. %q", addr, problem, exampleProbeAddress)
		return
	}
	others := []struct{ key, addr string }{{"listen.address", deref(fc.Listen.Address)}}
	if fc.Ingress != nil {
		others = append(others, struct{ key, addr string }{"ingress.address", deref(fc.Ingress.Address)})
	}
	for _, o := range others {
		if sharesPort(addr, o.addr) {
			v.errorf("listen.probe_address", "%q overlaps %s %q: give the probe listener its own port, e.g. %q",
				addr, o.key, o.addr, exampleProbeAddress)
		}
	}
}

// sharesPort reports whether listeners on a and b would take the same
// port of one interface: the same port (not 0, which picks a free one) on
// the same host, or on every interface for either.
func sharesPort(a, b string) bool {
	host, port, err := net.SplitHostPort(a)
	ohost, oport, oerr := net.SplitHostPort(b)
	if err != nil || oerr != nil || port == "0" || port != oport {
		return false
	}
	return host == ohost || isUnspecified(host) || isUnspecified(ohost)
}

// Equal reports whether two listen blocks are the same.
func (l Listen) Equal(o Listen) bool {
	return l.Address == o.Address && l.AllowRemote == o.AllowRemote && l.Token == o.Token &&
		l.TokenScope == o.TokenScope && slices.Equal(l.AllowedHosts, o.AllowedHosts) &&
		l.MaxConnections == o.MaxConnections && l.BodyReadTimeout == o.BodyReadTimeout &&
		l.ProbeAddress == o.ProbeAddress
}
