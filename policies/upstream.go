package policies

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Example values used in messages.
const (
	exampleUpstreamURL = "http://127.0.0.1:9200"
	exampleIngress     = "0.0.0.0:7080"
)

// upstreamName is what an upstream may be called: its name is a path
// segment of /call/{upstream}/….
var upstreamName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

func (v *validator) upstream(name string, u *upstreamFile, fc *fileConfig) {
	key := "upstream." + name
	if !upstreamName.MatchString(name) {
		v.errorf(key, "invalid upstream name %q: it is used in /call/%s/… paths; use letters, digits, dots, "+
			"dashes and underscores, starting with a letter or digit", name, name)
	}
	if u.URL != nil {
		if u.Service != nil {
			v.errorf(key+".url", "service and url are mutually exclusive: remove one of them")
		}
		const consulOnly = "%s selects Consul instances, but this upstream has a static url: remove one of them"
		if u.Tags != nil {
			v.errorf(key+".tags", consulOnly, "tags")
		}
		if u.Filter != nil {
			v.errorf(key+".filter", consulOnly, "filter")
		}
		if problem := checkUpstreamURL(*u.URL); problem != "" {
			v.errorf(key+".url", "%s", problem)
		}
		v.selfUpstream(name, u, fc)
	}
	if s := u.Service; s != nil && (len(*s) > 63 || !serviceName.MatchString(*s)) {
		hint := ""
		if !v.pos.written(key + ".service") {
			hint = `; it defaults to the block's name: set service = "…" or url = "…"`
		}
		v.errorf(key+".service", "%q is not a valid Consul service name: use letters, digits and dashes, "+
			"starting and ending with a letter or digit, at most 63 characters%s", *s, hint)
	}
	for i, t := range u.Tags {
		if strings.TrimSpace(t) == "" {
			v.errorf(key+".tags", "tag %d is empty: remove it or give it a value", i+1)
		}
	}
	if u.Filter != nil && strings.TrimSpace(*u.Filter) == "" {
		v.errorf(key+".filter", "must not be empty: remove it to take every passing instance")
	}
	v.breakerRef(key+".breaker", u.Breaker, fc.Breaker)
	v.duration(key+".timeout", u.Timeout, false)
	v.atLeast(key+".retries", u.Retries, 0)
	v.atLeast(key+".max_concurrent", u.MaxConcurrent, 0)
	v.fallbackRefs(key+".fallback", u.Fallback, fc.Upstream)
	if b := u.Balance; b != nil && *b != BalanceRoundRobin && *b != BalanceLeastOutstanding {
		v.errorf(key+".balance", "must be %q or %q, got %q", BalanceRoundRobin, BalanceLeastOutstanding, *b)
	}
	v.upstreamIngressToken(key, u)
}

// checkUpstreamURL returns a problem description unless s is an http or
// https base URL: a host, an optional port and an optional path.
func checkUpstreamURL(s string) string { return checkBaseURL(s, exampleUpstreamURL) }

// checkBaseURL returns a problem description unless s is an http or https
// base URL: a host, an optional port and an optional path. example is a
// good value for the key.
func checkBaseURL(s, example string) string {
	if problem := checkHTTPURL(s, example); problem != "" {
		return problem
	}
	u, _ := url.Parse(s)
	switch {
	case u.User != nil:
		return "user information is not supported: give the scheme, host, port and path only"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "a query or fragment is not supported: give the scheme, host, port and path only"
	case u.Port() != "":
		if _, problem := splitHostPort(u.Host); problem != "" {
			return fmt.Sprintf("invalid port in %q: %s", redactURL(s), problem)
		}
	}
	return ""
}

// fallbackRefs checks that each fallback at key names a defined upstream,
// once.
func (v *validator) fallbackRefs(key string, fallback []string, upstreams map[string]*upstreamFile) {
	defined := sortedKeys(upstreams)
	list := "none"
	if len(defined) > 0 {
		list = strings.Join(defined, ", ")
	}
	for i, name := range fallback {
		switch {
		case slices.Contains(fallback[:i], name):
			v.errorf(key, "%q is listed twice: remove one", name)
		case upstreams[name] == nil:
			v.errorf(key, "no upstream block named %q; defined: %s%s", name, list, didYouMean(name, defined))
		}
	}
}

// fallbackCycles reports fallback chains that lead back to where they
// started (a → b → a, or a → a): such a chain would never end. fallbacks
// holds, for each block of the type (upstream or model), the names it falls
// back to; names that are not defined are left out of the walk (they are
// reported elsewhere). A depth-first walk finds at least one cycle among any
// blocks that fall back to each other; each cycle found is reported once, at
// the attribute attr (fallback, context_fallback) of its alphabetically
// first block.
func (v *validator) fallbackCycles(blockType, attr string, fallbacks map[string][]string) {
	const (
		unvisited = iota
		onPath
		done
	)
	state := map[string]int{}
	seen := map[string]bool{}
	var path []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = onPath
		path = append(path, name)
		for _, next := range fallbacks[name] {
			if _, ok := fallbacks[next]; !ok {
				continue // not defined: reported with the reference
			}
			switch state[next] {
			case unvisited:
				visit(next)
			case onPath:
				loop := path[slices.Index(path, next):]
				// Start at the alphabetically first name, so each cycle
				// has one spelling however it was reached.
				first := slices.Index(loop, slices.Min(loop))
				cycle := slices.Concat(loop[first:], loop[:first], loop[first:first+1])
				text := strings.Join(cycle, " → ")
				if !seen[text] {
					seen[text] = true
					v.errorf(blockType+"."+cycle[0]+"."+attr,
						"%s cycle %s: a %s chain must end; remove one of these %ss", attr, text, attr, attr)
				}
			}
		}
		path = path[:len(path)-1]
		state[name] = done
	}
	for _, name := range sortedKeys(fallbacks) {
		if state[name] == unvisited {
			visit(name)
		}
	}
}

// ingress checks the ingress block against the agent it forwards to and the
// control API it must not collide with.
func (v *validator) ingress(in *ingressFile, fc *fileConfig) {
	if deref(fc.Agent.Port) == 0 {
		v.errorf("ingress", "needs agent.port, the port the agent takes tasks on: set port in the agent block, "+
			"e.g. port = 8081")
	}
	switch {
	case in.Address == nil:
		v.required("ingress.address", `the address callers send tasks to, e.g. address = "`+exampleIngress+`"`)
	default:
		addr := *in.Address
		host, problem := splitHostPort(addr)
		if problem != "" {
			v.errorf("ingress.address", "invalid address %q: %s; use host:port, e.g. %q", addr, problem, exampleIngress)
			break
		}
		listen := deref(fc.Listen.Address)
		lhost, lproblem := splitHostPort(listen)
		_, port, _ := net.SplitHostPort(addr)
		_, lport, _ := net.SplitHostPort(listen)
		switch {
		case lproblem != "" || port == "0" || port != lport:
			// Different ports, or a port picked at random for each.
		case addr == listen:
			v.errorf("ingress.address", "the same as listen.address: give the ingress its own port")
		case host == lhost || isUnspecified(host) || isUnspecified(lhost):
			v.errorf("ingress.address", "%q overlaps listen.address %q: give the ingress its own port", addr, listen)
		}
	}
	v.breakerRef("ingress.breaker", in.Breaker, fc.Breaker)
	v.duration("ingress.timeout", in.Timeout, false)
	v.fallbackRefs("ingress.fallback", in.Fallback, fc.Upstream)
	v.atLeast("ingress.max_concurrent", in.MaxConcurrent, 0)
}

// isUnspecified reports whether host means every interface: "", 0.0.0.0 or
// ::.
func isUnspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
