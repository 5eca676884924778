package policies

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/agent-sidecar/sidecar/internal/redact"
)

// splitHostPort splits a host:port address and checks the port; it returns
// a problem description instead when the address is not of that form.
func splitHostPort(addr string) (host, problem string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "not of the form host:port"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "the port must be a number between 0 and 65535"
	}
	return host, ""
}

// isLoopback reports whether host only accepts connections from this
// machine: "localhost", 127.0.0.0/8 or ::1. An empty host means every
// interface, so it is not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkConsulAddress returns a problem description unless addr is
// host:port or http(s)://host:port, the forms the Consul API client accepts.
func checkConsulAddress(addr string) string {
	const hint = `use host:port or http(s)://host:port, e.g. "` + defaultConsulAddress + `"`
	hostport := addr
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
			return hint
		case u.User != nil:
			return "user information is not supported: set token in the consul block instead"
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			return "a path or query is not supported: " + hint
		}
		hostport = u.Host
	}
	if host, problem := splitHostPort(hostport); problem != "" || host == "" {
		return hint
	}
	return ""
}

// checkHTTPURL returns a problem description unless s is an absolute http or
// https URL with a host; example is a good value for the key. The URL is
// echoed with its secrets redacted.
func checkHTTPURL(s, example string) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("is not a valid URL: use an absolute http or https URL, e.g. %q", example)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an absolute http or https URL, e.g. %q, got %q", example, redactURL(s))
	}
	return ""
}

// checkSecretURL is checkHTTPURL for a URL whose path may be its secret (a
// webhook's, a probe's): the URL is echoed as redact.URL shows it, scheme
// and host only.
func checkSecretURL(s, example string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an absolute http or https URL, e.g. %q, got %q", example, redact.URL(s))
	}
	return ""
}

// redactURL keeps the scheme, host and path of a URL and drops what may
// carry a secret: user information, query and fragment. A string that does
// not parse as a URL is redacted whole.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		// A host:port address or a relative reference.
		s, _, _ = strings.Cut(s, "?")
		s, _, _ = strings.Cut(s, "#")
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			s = s[i+1:]
		}
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	clean := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return clean.String()
}
