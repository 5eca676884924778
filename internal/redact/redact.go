// Package redact hides the parts of URLs and command lines that may carry
// secrets, so they can be shown in errors, logs, status output and Consul
// checks.
package redact

import (
	"net"
	"net/url"
	"strings"
)

// Mark stands for what was hidden.
const Mark = "<redacted>"

// URL keeps the scheme, host and port of a URL and replaces everything else
// (user information, path, query and fragment) with "/<redacted>":
// "https://hooks.slack.com/services/T0/B0/XYZ" becomes
// "https://hooks.slack.com/<redacted>". Webhooks such as Slack's, Discord's
// and Teams' carry their secret in the path, and url.URL.Redacted hides only
// a password.
//
// A string that is not a valid absolute URL (a mistyped one, which is when
// it is shown in an error) is cut the same way: what stands before the
// first "/", "?" or "#" is kept when it looks like [scheme://]host[:port],
// the rest is hidden. The result never holds more of the input than the
// scheme and the host, so it is safe to quote in any message.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" && u.Opaque == "" {
		out := u.Scheme + "://" + u.Host
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			out += "/" + Mark
		}
		return out
	}
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 && !strings.ContainsAny(raw[:i], "/?#@") {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	hidden := tail != "" && tail != "/"
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority, hidden = authority[i+1:], true
	}
	if !looksLikeHost(authority) {
		authority, hidden = "", true
	}
	if hidden {
		return prefix + authority + "/" + Mark
	}
	return prefix + authority
}

// looksLikeHost reports whether s can be shown as a host: a name or an
// address, with a numeric port if it has a colon. Anything else (a
// "user:password" without its "@", say) might be a secret.
func looksLikeHost(s string) bool {
	if !strings.Contains(s, ":") {
		return true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return true // an IPv6 address without a port
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return false
	}
	for _, r := range port {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Command keeps only the program of a command line: its arguments may
// carry secrets (tokens, keys, passwords passed as flags).
func Command(argv []string) []string {
	if len(argv) == 0 {
		return []string{}
	}
	return []string{argv[0]}
}
