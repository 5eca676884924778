package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/agent-sidecar/sidecar/internal/redact"
)

// defaultControlAddr is the control API when neither -addr nor
// $SIDECAR_ADDR says otherwise.
const defaultControlAddr = "http://127.0.0.1:7070"

// controlURL is the URL of path (e.g. "/v1/status") on the control API at
// addr, the -addr flag or $SIDECAR_ADDR. addr takes the forms
// CONSUL_HTTP_ADDR takes: host:port (plain HTTP), http://host[:port] or
// https://host[:port], optionally with a path prefix (a sidecar behind a
// reverse proxy). User information, a query or a fragment are refused.
func controlURL(addr, path string) (string, error) {
	raw := strings.TrimSpace(addr)
	bare := !strings.Contains(raw, "://")
	if bare {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	problem := ""
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
		problem = "not an address"
	case u.User != nil:
		problem = "user information is not supported (set SIDECAR_TOKEN for the token)"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		problem = "a query or fragment is not supported"
	case bare && u.Port() == "":
		problem = "the port is missing"
	case u.Port() != "" && !validPort(u.Port()):
		problem = "the port must be a number between 1 and 65535"
	}
	if problem != "" {
		return "", fmt.Errorf(`bad -addr or SIDECAR_ADDR %q: %s: use host:port or http(s)://host:port, e.g. "127.0.0.1:7070"`,
			redact.URL(addr), problem)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/") + path, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
