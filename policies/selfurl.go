package policies

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ownListener returns which of this sidecar's own listeners (listen.address,
// ingress.address) the upstream URL s points at, as "listen.address
// \"127.0.0.1:7070\"", or "" when it points at none. Hosts are compared as a
// request would reach them: the loopback names (localhost, 127.0.0.0/8,
// ::1) are one host, and a listener on every interface (0.0.0.0, ::, no
// host) is reached through any of them and through its own address. A
// listener on port 0 gets a random port and is never matched.
func ownListener(s string, fc *fileConfig) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	host := u.Hostname()
	type listener struct{ key, addr string }
	ls := []listener{{"listen.address", deref(fc.Listen.Address)}}
	if fc.Ingress != nil {
		ls = append(ls, listener{"ingress.address", deref(fc.Ingress.Address)})
	}
	for _, l := range ls {
		lhost, lport, err := net.SplitHostPort(l.addr)
		if err != nil || lport == "0" || lport != port {
			continue
		}
		if sameListenHost(host, lhost) {
			return fmt.Sprintf("%s %q", l.key, l.addr)
		}
	}
	return ""
}

// sameListenHost reports whether a request to host reaches a listener bound
// to lhost.
func sameListenHost(host, lhost string) bool {
	switch {
	case strings.EqualFold(host, lhost):
		return true
	case isUnspecified(lhost):
		return isLoopback(host) || isUnspecified(host)
	case isLoopback(lhost):
		return isLoopback(host) || isUnspecified(host)
	}
	return false
}

// selfUpstream reports an upstream whose url points at this sidecar's own
// control API or ingress: every call to it would come back to the sidecar.
func (v *validator) selfUpstream(name string, u *upstreamFile, fc *fileConfig) {
	if u.URL == nil || checkUpstreamURL(*u.URL) != "" {
		return
	}
	if l := ownListener(*u.URL, fc); l != "" {
		v.errorf("upstream."+name+".url", "%q points at this sidecar's own %s: every call to it would come back "+
			"to the sidecar; give the address of the service itself", redactURL(*u.URL), l)
	}
}
