package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
	http    *http.Client // api's, for CloseIdleConnections
	address string       // scheme://host:port, for status output
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
	c, hc, addr, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{api: c, http: hc, address: addr, timeout: requestTimeout(cfg)}, nil
}

// CloseIdleConnections closes the client's idle connections to Consul.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

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

// TLSConfig says how the sidecar verifies Consul over HTTPS, and how it
// proves itself to a Consul that verifies its clients. As with the consul
// CLI, HTTPS is chosen by the address (https://host:port) or by
// CONSUL_HTTP_SSL=true, never by these settings: with an http address they
// are not used. Each empty field leaves the matching CONSUL_* variable in
// effect.
type TLSConfig struct {
	// CAFile is a PEM bundle of the certificate authorities that sign
	// Consul's certificate; they are trusted instead of the system's.
	// Empty: $CONSUL_CACERT (or $CONSUL_CAPATH), else the system's.
	CAFile string
	// CertFile and KeyFile are a client certificate and its private key
	// (PEM), for a Consul that verifies incoming HTTPS connections
	// (verify_incoming): both or neither. Empty: $CONSUL_CLIENT_CERT and
	// $CONSUL_CLIENT_KEY. The key's path may be shown; its contents never are.
	CertFile, KeyFile string
	// ServerName is the name Consul's certificate is checked against, e.g.
	// "server.dc1.consul" when the address is an IP the certificate does not
	// name. Empty: $CONSUL_TLS_SERVER_NAME, else the address's host.
	ServerName string
	// InsecureSkipVerify accepts any certificate from Consul: anyone on the
	// path could then impersonate it and read the ACL token. Only this field
	// turns verification off ($CONSUL_HTTP_SSL_VERIFY is ignored); callers
	// log Config.Warnings at start.
	InsecureSkipVerify bool
}

// Warnings returns what should be logged at start about cfg: today, that
// Consul's certificate is not verified.
func (cfg Config) Warnings() []string {
	if !cfg.TLS.InsecureSkipVerify {
		return nil
	}
	return []string{"consul.insecure_skip_verify is true: Consul's TLS certificate is not verified, so anyone on " +
		"the network path can impersonate Consul and read the ACL token; set consul.ca_file instead"}
}

// applyTLS puts the settings of t over those api.DefaultConfig read from
// the CONSUL_* variables: a field that is set wins over its variable.
func applyTLS(tc *api.TLSConfig, t TLSConfig) error {
	if t.CAFile != "" {
		tc.CAFile, tc.CAPath, tc.CAPem = t.CAFile, "", nil
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return fmt.Errorf("consul TLS: client certificate %q given without its key: set key_file too", t.CertFile)
	case t.KeyFile != "" && t.CertFile == "":
		return fmt.Errorf("consul TLS: client key %q given without its certificate: set cert_file too", t.KeyFile)
	case t.CertFile != "":
		tc.CertFile, tc.KeyFile = t.CertFile, t.KeyFile
		tc.CertPEM, tc.KeyPEM = nil, nil
	}
	switch {
	case tc.CertFile != "" && tc.KeyFile == "":
		return fmt.Errorf("consul TLS: client certificate %q ($%s) given without its key: set $%s too",
			tc.CertFile, api.HTTPClientCert, api.HTTPClientKey)
	case tc.KeyFile != "" && tc.CertFile == "":
		return fmt.Errorf("consul TLS: client key %q ($%s) given without its certificate: set $%s too",
			tc.KeyFile, api.HTTPClientKey, api.HTTPClientCert)
	}
	if t.ServerName != "" {
		tc.Address = t.ServerName
	}
	// Verification is turned off by the configuration only, where it shows
	// and is warned about, never by a variable of the environment.
	tc.InsecureSkipVerify = t.InsecureSkipVerify
	return nil
}

// probeTimeout bounds the extra handshake explainTransport makes to learn
// why Consul dropped a connection.
const probeTimeout = 2 * time.Second

// explainTransport adds to the errors of TLS connections to Consul what to
// do about them; the original error stays in the chain (errors.As).
type explainTransport struct {
	next http.RoundTripper
	tls  *tls.Config // next's, for the probe; nil for none
}

func (e explainTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := e.next.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	if explained := explainTLSError(err); explained != err {
		return resp, explained
	}
	// With TLS 1.3 a server refuses a client certificate (or its absence)
	// only after the client's handshake is done, so the request often
	// meets a reset connection (or HTTP/2's "client conn could not be
	// established") rather than Consul's alert. A handshake that sends
	// nothing after it reads the alert.
	if req.URL.Scheme == "https" && mayBeRefusal(err) {
		if alert := e.probe(req); alert != nil {
			return resp, explainTLSError(fmt.Errorf("%w (a new TLS handshake with Consul ends in: %w)", err, alert))
		}
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (e explainTransport) CloseIdleConnections() {
	if c, ok := e.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// probe makes one TLS handshake with the host of req, as the transport
// would, reads what Consul sends after it, and returns the TLS alert Consul
// sent, if any.
func (e explainTransport) probe(req *http.Request) error {
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "443")
	}
	cfg := &tls.Config{}
	if e.tls != nil {
		cfg = e.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = req.URL.Hostname()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), probeTimeout)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err == nil {
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(probeTimeout))
		_, err = conn.Read(make([]byte, 1))
	}
	if err != nil && strings.Contains(err.Error(), "remote error: tls: ") {
		return err
	}
	return nil
}

// mayBeRefusal reports whether err may hide a TLS alert of Consul: not when
// Consul could not be reached at all, or did not answer in time.
func mayBeRefusal(err error) bool {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr),
		errors.As(err, &netErr) && netErr.Timeout():
		return false
	}
	return true
}

// tlsHintError is a TLS error with the hint explainTLSError found for it.
type tlsHintError struct {
	hint string
	err  error
}

func (e *tlsHintError) Error() string { return e.hint + ": " + e.err.Error() }
func (e *tlsHintError) Unwrap() error { return e.err }

// explainTLSError returns err with a hint when it is a certificate problem
// of the connection to Consul, else err unchanged.
func explainTLSError(err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
	)
	msg := err.Error()
	var hint string
	switch {
	case errors.As(err, &unknownCA):
		hint = "Consul's TLS certificate is signed by an authority the sidecar does not trust: set consul.ca_file " +
			"(or CONSUL_CACERT) to the PEM certificate of the CA that signed it"
	case errors.As(err, &hostname):
		hint = "Consul's TLS certificate is not valid for the name checked (consul.tls_server_name or " +
			"CONSUL_TLS_SERVER_NAME when set, else the host of the address): use an address the certificate " +
			"names, or set consul.tls_server_name to a name it holds, e.g. \"server.dc1.consul\""
	case errors.As(err, &invalid):
		hint = "Consul's TLS certificate is not valid"
	case strings.Contains(msg, "remote error: tls: certificate required"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: unknown certificate authority"):
		hint = "Consul refused the connection for want of a client certificate it trusts (it verifies incoming " +
			"HTTPS connections): set consul.cert_file and consul.key_file (or CONSUL_CLIENT_CERT and " +
			"CONSUL_CLIENT_KEY) to a client certificate signed by Consul's CA"
	case strings.Contains(msg, "remote error: tls: "):
		hint = "Consul refused the TLS connection"
	case errors.As(err, &recordErr), strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		hint = "Consul answers plain HTTP on this port: use an http:// address (and unset CONSUL_HTTP_SSL)"
	default:
		return err
	}
	return &tlsHintError{hint: hint, err: err}
}

// newAPIClient builds the consul/api client for cfg and returns it with the
// address it talks to. CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN are used only
// when cfg.Address and cfg.Token are empty, and the CONSUL_* TLS variables
// only for the fields of cfg.TLS that are empty; the others (namespace,
// CONSUL_HTTP_SSL) are honoured as the consul CLI does.
func newAPIClient(cfg Config) (*api.Client, *http.Client, string, error) {
	raw := cfg.Address
	if raw == "" {
		raw = os.Getenv(api.HTTPAddrEnvName)
	}
	if raw == "" {
		raw = DefaultAddress
	}
	scheme, host, err := parseAddress(raw)
	if err != nil {
		return nil, nil, "", err
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
	if err := applyTLS(&ac.TLSConfig, cfg.TLS); err != nil {
		return nil, nil, "", err
	}
	// Bound every request, so a hung Consul cannot block a caller forever.
	// Callers pass contexts with their own, usually shorter, deadlines.
	hc, err := api.NewHttpClient(ac.Transport, ac.TLSConfig)
	if err != nil {
		return nil, nil, "", fmt.Errorf("consul client: TLS setup: %w", err)
	}
	hc.Timeout = requestTimeout(cfg)
	hc.Transport = explainTransport{next: hc.Transport, tls: ac.Transport.TLSClientConfig}
	ac.HttpClient = hc

	c, err := api.NewClient(ac)
	if err != nil {
		return nil, nil, "", fmt.Errorf("consul client: %w", err)
	}
	return c, hc, ac.Scheme + "://" + host, nil
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
