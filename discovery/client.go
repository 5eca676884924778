package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultAddress        = "127.0.0.1:8500"
	DefaultSyncInterval   = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// Client reads from the local Consul agent: check states and healthy
// instances, returned as this package's own types.
type Client struct {
	api     *api.Client
	address string // scheme://host:port, for status output
	timeout time.Duration
}

// CheckInfo is one Consul check and its current state.
type CheckInfo struct {
	ServiceID   string      `json:"service_id,omitempty"` // empty for node-level checks
	ServiceName string      `json:"service_name,omitempty"`
	CheckID     string      `json:"check_id"`
	Name        string      `json:"name"`
	Status      CheckStatus `json:"status"`
	Output      string      `json:"output"`
}

// ServiceEntry is one instance of a service as the Consul catalog sees it,
// with the checks of the instance and of its node.
type ServiceEntry struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Node    string            `json:"node"`
	Address string            `json:"address"` // the service address, else the node's
	Port    int               `json:"port"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Checks  []CheckInfo       `json:"checks"`
}

// NewClient returns a Client for the Consul agent cfg points to. It does no
// I/O.
func NewClient(cfg Config) (*Client, error) {
	c, addr, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{api: c, address: addr, timeout: requestTimeout(cfg)}, nil
}

// Address is the Consul HTTP address in use, as scheme://host:port.
func (c *Client) Address() string { return c.address }

// AgentChecks returns the checks the local agent runs for serviceID (all
// checks when serviceID is empty), sorted by check ID. The local agent holds
// the current outputs, even before they reach the catalog.
func (c *Client) AgentChecks(ctx context.Context, serviceID string) ([]CheckInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	checks, err := c.api.Agent().ChecksWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading agent checks: %w", err)
	}
	out := make([]CheckInfo, 0, len(checks))
	for _, ch := range checks {
		if serviceID != "" && ch.ServiceID != serviceID {
			continue
		}
		out = append(out, CheckInfo{
			ServiceID:   ch.ServiceID,
			ServiceName: ch.ServiceName,
			CheckID:     ch.CheckID,
			Name:        ch.Name,
			Status:      CheckStatus(ch.Status),
			Output:      ch.Output,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out, nil
}

// ServiceHealth returns every registered instance of service with its
// checks, whatever their status (/v1/health/service/<name>).
func (c *Client) ServiceHealth(ctx context.Context, service string) ([]ServiceEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	entries, _, err := c.api.Health().Service(service, "", false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading health of service %q: %w", service, err)
	}
	out := make([]ServiceEntry, 0, len(entries))
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		in := instanceFrom(e)
		se := ServiceEntry{ID: in.ID, Name: in.Service, Node: in.Node, Address: in.Address, Port: in.Port, Tags: in.Tags, Meta: in.Meta}
		for _, ch := range e.Checks {
			se.Checks = append(se.Checks, CheckInfo{
				ServiceID:   ch.ServiceID,
				ServiceName: ch.ServiceName,
				CheckID:     ch.CheckID,
				Name:        ch.Name,
				Status:      CheckStatus(ch.Status),
				Output:      ch.Output,
			})
		}
		out = append(out, se)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// newAPIClient builds the consul/api client for cfg and returns it with the
// address it talks to. CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN are used only
// when cfg.Address and cfg.Token are empty; the other CONSUL_* variables
// (TLS files, namespace) are honoured as the consul CLI does.
func newAPIClient(cfg Config) (*api.Client, string, error) {
	raw := cfg.Address
	if raw == "" {
		raw = os.Getenv(api.HTTPAddrEnvName)
	}
	if raw == "" {
		raw = DefaultAddress
	}
	scheme, host, err := parseAddress(raw)
	if err != nil {
		return nil, "", err
	}

	ac := api.DefaultConfig()
	ac.Address = host
	if scheme != "" {
		ac.Scheme = scheme // else as CONSUL_HTTP_SSL says, http by default
	}
	if cfg.Token != "" {
		ac.Token = cfg.Token
		ac.TokenFile = ""
	}
	// Bound every request, so a hung Consul cannot block a caller forever.
	// Callers pass contexts with their own, usually shorter, deadlines.
	hc, err := api.NewHttpClient(ac.Transport, ac.TLSConfig)
	if err != nil {
		return nil, "", fmt.Errorf("consul client: %w", err)
	}
	hc.Timeout = requestTimeout(cfg)
	ac.HttpClient = hc

	c, err := api.NewClient(ac)
	if err != nil {
		return nil, "", fmt.Errorf("consul client: %w", err)
	}
	return c, ac.Scheme + "://" + host, nil
}

// parseAddress splits "host:port", "http://host[:port]" or
// "https://host[:port]" into a scheme ("" when none was given) and a
// host[:port]. A bare host needs a port; with a scheme the port may be left
// to the scheme's default.
func parseAddress(raw string) (scheme, host string, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", errors.New("consul address is empty")
	}
	if !strings.Contains(s, "://") {
		if err := checkHostPort(s); err != nil {
			return "", "", fmt.Errorf("consul address %q: %w", raw, err)
		}
		return "", s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("consul address %q: not a valid URL", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", "", fmt.Errorf("consul address %q: scheme must be http or https", raw)
	case u.User != nil:
		return "", "", fmt.Errorf("consul address: credentials in the URL are not supported; use the token")
	case u.Host == "" || u.Hostname() == "":
		return "", "", fmt.Errorf("consul address %q: missing host", raw)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return "", "", fmt.Errorf("consul address %q: must not have a path or query", raw)
	}
	if u.Port() != "" {
		if err := checkHostPort(u.Host); err != nil {
			return "", "", fmt.Errorf("consul address %q: %w", raw, err)
		}
	}
	return u.Scheme, u.Host, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port or http(s)://host:port")
	}
	if host == "" {
		return errors.New("missing host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q", port)
	}
	return nil
}

func requestTimeout(cfg Config) time.Duration {
	if cfg.RequestTimeout > 0 {
		return cfg.RequestTimeout
	}
	return DefaultRequestTimeout
}

// Fleet returns every instance of the services tagged tag, with their
// checks, and the Consul index of the health state it read. With waitIndex
// > 0 it first waits (a blocking query, up to wait) until any check in the
// datacenter changes after that index, so a caller can redraw on change.
func (c *Client) Fleet(ctx context.Context, tag string, waitIndex uint64, wait time.Duration) ([]ServiceEntry, uint64, error) {
	_, meta, err := c.api.Health().State(api.HealthAny, (&api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}).WithContext(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the health state: %w", err)
	}
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	services, _, err := c.api.Catalog().Services((&api.QueryOptions{}).WithContext(qctx))
	if err != nil {
		return nil, 0, fmt.Errorf("listing services: %w", err)
	}
	var names []string
	for name, tags := range services {
		for _, t := range tags {
			if t == tag {
				names = append(names, name)
				break
			}
		}
	}
	sort.Strings(names)
	var out []ServiceEntry
	for _, name := range names {
		entries, err := c.ServiceHealth(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range entries {
			for _, t := range e.Tags {
				if t == tag {
					out = append(out, e)
					break
				}
			}
		}
	}
	return out, meta.LastIndex, nil
}
