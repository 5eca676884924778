package policies

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

// positions tells the validator where each key was written, so every error
// names a file, line and column.
type positions struct {
	ranges  map[string]hcl.Range // key path → attribute name or block header
	bad     map[string]bool      // keys already reported as invalid
	fromEnv map[string]string    // key path → environment variable it came from
	first   string               // first file loaded, for keys with no block
	policy  map[string]bool      // labelled blocks (e.g. "model.gpt-4o") that came from Consul KV
}

// written reports whether the key was set in a file.
func (p positions) written(key string) bool {
	_, ok := p.ranges[key]
	return ok
}

// validator collects every problem of a configuration with defaults
// applied.
type validator struct {
	pos   positions
	diags Diagnostics
}

// validate checks fc (with defaults applied) and returns every problem. A
// problem with a value is reported where the value was written; a missing
// value is reported at the header of the block that lacks it, or at the
// start of the first file when the block itself is missing; a value from
// the environment is reported without a position and names the variable.
func validate(fc *fileConfig, pos positions) Diagnostics {
	v := &validator{pos: pos}
	v.agent(fc.Agent)
	v.listen(fc.Listen)
	v.listenGuards(fc.Listen)
	v.probeAddress(fc)
	v.consul(fc.Consul)
	v.health(fc.Health, fc.Notify)
	names := make([]string, 0, len(fc.Notify))
	for name := range fc.Notify {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v.notify(name, fc.Notify[name])
	}
	for _, name := range sortedKeys(fc.Breaker) {
		v.breaker(name, fc.Breaker[name])
	}
	for _, name := range sortedKeys(fc.Upstream) {
		v.upstream(name, fc.Upstream[name], fc)
	}
	upstreamFallbacks := make(map[string][]string, len(fc.Upstream))
	for name, u := range fc.Upstream {
		upstreamFallbacks[name] = u.Fallback
	}
	v.fallbackCycles("upstream", "fallback", upstreamFallbacks)
	if fc.Ingress != nil {
		v.ingress(fc.Ingress, fc)
		v.ingressGuards(fc.Ingress)
	}
	for _, label := range sortedKeys(fc.Model) {
		v.model(label, fc.Model[label], fc)
	}
	modelFallbacks := make(map[string][]string, len(fc.Model))
	for label, m := range fc.Model {
		modelFallbacks[label] = nil
		if m.Fallback != nil {
			modelFallbacks[label] = []string{*m.Fallback}
		}
	}
	v.fallbackCycles("model", "fallback", modelFallbacks)
	contextFallbacks := make(map[string][]string, len(fc.Model))
	for label, m := range fc.Model {
		contextFallbacks[label] = nil
		if m.ContextFallback != nil {
			contextFallbacks[label] = []string{*m.ContextFallback}
		}
	}
	v.fallbackCycles("model", "context_fallback", contextFallbacks)
	v.policyModels(fc.Model)
	for _, name := range sortedKeys(fc.Budget) {
		v.budget(name, fc.Budget[name], fc)
	}
	v.gateway(fc.Gateway)
	if t := fc.TLS; t != nil && t.CAFile != nil {
		if problem := checkCAFile(*t.CAFile); problem != "" {
			v.errorf("tls.ca_file", "%s", problem)
		}
	}
	if fc.Tracing != nil {
		v.tracing(fc.Tracing)
	}
	if l := fc.Log; l != nil && l.Level != nil {
		switch strings.ToLower(*l.Level) {
		case "trace", "debug", "info", "warn", "error":
		default:
			v.errorf("log.level", "must be trace, debug, info, warn or error, got %q", *l.Level)
		}
	}
	return v.diags
}

func (v *validator) errorf(key, format string, args ...any) {
	d := Diagnostic{Key: key, Message: fmt.Sprintf(format, args...)}
	if env, ok := v.pos.fromEnv[key]; ok {
		d.Message += fmt.Sprintf(" (the value comes from the %s environment variable)", env)
		v.diags = append(v.diags, d)
		return
	}
	d.File, d.Line, d.Column = v.pos.first, 1, 1
	for k := key; k != ""; k = parentKey(k) {
		if rng, ok := v.pos.ranges[k]; ok {
			d.File, d.Line, d.Column = rng.Filename, rng.Start.Line, rng.Start.Column
			break
		}
	}
	v.diags = append(v.diags, d)
}

// required reports a missing value, unless the key was written with a value
// that was already reported as invalid.
func (v *validator) required(key, hint string) {
	if !v.pos.bad[key] {
		v.errorf(key, "required: %s", hint)
	}
}

// duration checks a duration written in a file (defaults are valid by
// construction): it must parse and be greater than 0, or at least 0 when
// zeroOK.
func (v *validator) duration(key string, s *string, zeroOK bool) (time.Duration, bool) {
	if s == nil || !v.pos.written(key) {
		return 0, false
	}
	d, err := time.ParseDuration(*s)
	switch {
	case err != nil:
		v.errorf(key, `invalid duration %q: use a number and a unit, e.g. "30s", "5m"`, *s)
	case d < 0:
		v.errorf(key, "must not be negative, got %q", *s)
	case d == 0 && !zeroOK:
		v.errorf(key, "must be greater than 0, got %q", *s)
	default:
		return d, true
	}
	return 0, false
}

// atLeast checks that a whole number, when set, is at least least.
func (v *validator) atLeast(key string, n *int, least int) {
	switch {
	case n == nil || *n >= least:
	case least == 0:
		v.errorf(key, "must be 0 or more, got %d", *n)
	default:
		v.errorf(key, "must be at least %d, got %d", least, *n)
	}
}

// Example values used in messages.
const (
	exampleProbeURL = "http://127.0.0.1:8081/healthz"
	exampleWebhook  = "https://hooks.example.com/agents"
)

// serviceName is what Consul accepts as a DNS-compatible service name.
var serviceName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)

// metaKey is what Consul accepts as a service meta key.
var metaKey = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

func (v *validator) agent(a *agentFile) {
	switch {
	case a.Name == nil:
		v.required("agent.name", `the agent's Consul service name, e.g. agent { name = "writer" }`)
	case len(*a.Name) > 63 || !serviceName.MatchString(*a.Name):
		v.errorf("agent.name", "%q is not a valid Consul service name: use letters, digits and dashes, "+
			"starting and ending with a letter or digit, at most 63 characters", *a.Name)
	}
	if a.ID != nil && v.pos.written("agent.id") {
		switch {
		case *a.ID == "":
			v.errorf("agent.id", "must not be empty: remove it to use the agent name")
		case strings.ContainsRune(*a.ID, '/') || strings.IndexFunc(*a.ID, unicode.IsSpace) >= 0:
			v.errorf("agent.id", "%q must not contain \"/\" or spaces", *a.ID)
		}
	}
	if a.Address != nil && *a.Address == "" {
		v.errorf("agent.address", `must not be empty: remove it to use "127.0.0.1"`)
	}
	if a.Port != nil && (*a.Port < 0 || *a.Port > 65535) {
		v.errorf("agent.port", "must be between 0 and 65535, got %d", *a.Port)
	}
	for i, t := range a.Tags {
		if strings.TrimSpace(t) == "" {
			v.errorf("agent.tags", "tag %d is empty: remove it or give it a value", i+1)
		}
	}
	v.meta(a.Meta)
	if a.Exec != nil {
		v.exec(a.Exec)
	}
}

// meta applies Consul's own limits on service meta, so a bad key fails here
// with a position rather than later at registration.
func (v *validator) meta(meta map[string]string) {
	if len(meta) > 64 {
		v.errorf("agent.meta", "has %d entries: Consul allows at most 64", len(meta))
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !metaKey.MatchString(k):
			v.errorf("agent.meta", "key %q is not valid: use 1 to 128 letters, digits, dashes and underscores", k)
		case strings.HasPrefix(k, "consul-"):
			v.errorf("agent.meta", "key %q is reserved by Consul: choose a key not starting with \"consul-\"", k)
		case k == MetaAgentPort:
			v.errorf("agent.meta", "key %q is set by the sidecar when the ingress is enabled (it marks the "+
				"registration as a sidecar's ingress, to which callers send their ingress token): choose another key", k)
		case len(meta[k]) > 512:
			v.errorf("agent.meta", "value of %q is longer than Consul's limit of 512 characters", k)
		}
	}
}

func (v *validator) exec(e *execFile) {
	if e.User != nil {
		if _, _, problem := LookupUser(*e.User); problem != "" {
			v.errorf("agent.exec.user", "%s", problem)
		}
	}
	switch {
	case e.Command == nil:
		v.required("agent.exec.command", `the program to run and its arguments, e.g. command = ["python3", "agent.py"]`)
	case len(e.Command) == 0:
		v.errorf("agent.exec.command", `must not be empty: give the program to run and its arguments, e.g. ["python3", "agent.py"]`)
	case e.Command[0] == "":
		v.errorf("agent.exec.command", "the first element, the program to run, must not be empty")
	}
	valid := []string{RestartAlways, RestartOnFailure, RestartNever}
	if e.Restart != nil && !slices.Contains(valid, *e.Restart) {
		v.errorf("agent.exec.restart", `must be one of "always", "on-failure", "never", got %q`, *e.Restart)
	}
	v.passEnv(e.PassEnv)
	v.duration("agent.exec.stop_timeout", e.StopTimeout, false)
	v.duration("agent.exec.restart_backoff", e.RestartBackoff, false)
	v.duration("agent.exec.max_restart_backoff", e.MaxRestartBackoff, false)
	first, err1 := time.ParseDuration(deref(e.RestartBackoff))
	limit, err2 := time.ParseDuration(deref(e.MaxRestartBackoff))
	if err1 == nil && err2 == nil && first > 0 && limit > 0 && limit < first {
		key := "agent.exec.max_restart_backoff"
		if !v.pos.written(key) {
			key = "agent.exec.restart_backoff"
		}
		v.errorf(key, "max_restart_backoff (%s) is less than restart_backoff (%s): the cap must be at least the first delay",
			limit, first)
	}
}

func (v *validator) listen(l *listenFile) {
	addr := deref(l.Address)
	host, problem := splitHostPort(addr)
	if problem != "" {
		v.errorf("listen.address", "invalid address %q: %s; use host:port, e.g. %q", addr, problem, defaultListenAddress)
		return
	}
	remote := !isLoopback(host)
	token := deref(l.Token)
	switch {
	case remote && !deref(l.AllowRemote):
		v.errorf("listen.address", "%q is not a loopback address: set allow_remote = true in the listen block "+
			"(and a token) to expose the control API beyond this host", addr)
	case remote && token == "":
		v.errorf("listen.address", "%q is not a loopback address, so the control API needs a token: set token = "+
			"env(\"SIDECAR_TOKEN\") in the listen block (or the SIDECAR_TOKEN variable), at least 16 characters", addr)
	}
	if weakToken(token) {
		v.errorf("listen.token", "must be at least 16 characters without spaces or line breaks "+
			"(e.g. the output of openssl rand -hex 16)")
	}
	switch scope := deref(l.TokenScope); {
	case scope != TokenAll && scope != TokenMutating:
		v.errorf("listen.token_scope", "must be %q or %q, got %q", TokenAll, TokenMutating, scope)
	case scope == TokenMutating && remote:
		v.errorf("listen.token_scope", "%q is only for a loopback control API; with a remote one every endpoint "+
			"but /v1/health needs the token: remove token_scope", TokenMutating)
	}
}

func (v *validator) consul(c *consulFile) {
	if addr := deref(c.Address); checkConsulAddress(addr) != "" {
		v.errorf("consul.address", "invalid address %q: %s", redactURL(addr), checkConsulAddress(addr))
	}
	if d, ok := v.duration("consul.deregister_critical_after", c.DeregisterCriticalAfter, false); ok && d < time.Minute {
		v.errorf("consul.deregister_critical_after", "must be at least 1m (Consul's minimum is 1m), got %q",
			*c.DeregisterCriticalAfter)
	}
	v.duration("consul.sync_interval", c.SyncInterval, false)
	if p := deref(c.PolicyPrefix); strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n") {
		v.errorf("consul.policy_prefix", "invalid Consul KV prefix %q: write it without a leading slash or spaces, e.g. \"sidecar/policies/\"", p)
	}
	if p := deref(c.FleetPrefix); strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n") {
		v.errorf("consul.fleet_prefix", "invalid Consul KV prefix %q: write it without a leading slash or spaces, e.g. %q", p, DefaultFleetPrefix)
	} else if pol, fleet := policyPrefix(deref(c.PolicyPrefix)), fleetPrefix(c.FleetPrefix); pol != "" && fleet != "" &&
		(strings.HasPrefix(pol, fleet) || strings.HasPrefix(fleet, pol)) {
		v.errorf("consul.fleet_prefix", "the fleet reports (%q) and the fleet policies (%q) share a KV prefix: every report "+
			"written would wake the policy watch of every sidecar; give them separate prefixes, e.g. %q and \"sidecar/policies/\"",
			fleet, pol, DefaultFleetPrefix)
	}
	v.consulTLS(c)
}

// consulTLS checks the files and server name of HTTPS to Consul, whether
// written in a file or taken from the CONSUL_* variables. Contents of the
// key file are never shown, only its path.
func (v *validator) consulTLS(c *consulFile) {
	if c.CAFile != nil {
		if problem := checkCAFile(*c.CAFile); problem != "" {
			v.errorf("consul.ca_file", "%s", problem)
		}
	}
	cert, key := c.CertFile, c.KeyFile
	_, certFromEnv := v.pos.fromEnv["consul.cert_file"]
	_, keyFromEnv := v.pos.fromEnv["consul.key_file"]
	switch {
	case cert != nil && key == nil && certFromEnv:
		v.errorf("consul.cert_file", "a client certificate needs its private key: set %s too (or unset %s)",
			envConsulClientKey, envConsulClientCert)
	case cert != nil && key == nil:
		v.errorf("consul.cert_file", "cert_file is set but key_file is not: a client certificate needs its private "+
			"key; set key_file too (or remove cert_file)")
	case key != nil && cert == nil && keyFromEnv:
		v.errorf("consul.key_file", "a client key needs its certificate: set %s too (or unset %s)",
			envConsulClientCert, envConsulClientKey)
	case key != nil && cert == nil:
		v.errorf("consul.key_file", "key_file is set but cert_file is not: set cert_file to the client certificate "+
			"of this key (or remove key_file)")
	}
	certOK := cert != nil && v.pemFile("consul.cert_file", *cert, false)
	keyOK := key != nil && v.pemFile("consul.key_file", *key, true)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(*cert, *key); err != nil {
			// crypto/tls's messages name what is wrong, never the key.
			msg := strings.TrimPrefix(err.Error(), "tls: ")
			if strings.Contains(msg, "does not match") {
				msg = "it is not the key of the certificate in cert_file " + strconv.Quote(*cert) +
					": give the key the certificate was issued with"
			}
			v.errorf("consul.key_file", "%q cannot be used with cert_file: %s", *key, msg)
		}
	}
	if n := c.TLSServerName; n != nil {
		if strings.Contains(*n, "://") || strings.ContainsAny(*n, "/ \t\r\n") {
			v.errorf("consul.tls_server_name", "%q is not a host name: give the name Consul's certificate holds, "+
				"without scheme or path, e.g. \"server.dc1.consul\"", *n)
		}
	}
}

// pemFile checks that path is a readable PEM file holding a private key
// (wantKey) or a certificate, and reports the problem under key otherwise.
// Only the types of the PEM blocks are ever shown, never their contents.
func (v *validator) pemFile(key, path string, wantKey bool) bool {
	what, example := "the client certificate", "-----BEGIN CERTIFICATE-----"
	if wantKey {
		what, example = "the client certificate's private key", "-----BEGIN PRIVATE KEY-----, or EC or RSA PRIVATE KEY"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		v.errorf(key, "cannot read %q: %v: give %s as a PEM file", path, errors.Unwrap(err), what)
		return false
	}
	var certs, keys, encrypted int
	var types []string // of every PEM block, for the message
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if !slices.Contains(types, b.Type) {
			types = append(types, b.Type)
		}
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				v.errorf(key, "%q holds a CERTIFICATE block that is not a valid X.509 certificate", path)
				return false
			}
			// The first certificate is the client's own; Consul refuses it
			// once expired.
			if certs == 0 && !wantKey && time.Now().After(c.NotAfter) {
				v.errorf(key, "the certificate in %q expired on %s: renew it", path, c.NotAfter.UTC().Format(time.DateOnly))
				return false
			}
			certs++
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED":
			encrypted++
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			keys++
		}
	}
	switch {
	case len(types) == 0:
		v.errorf(key, "%q is not a PEM file: give %s in PEM (%s)", path, what, example)
	case certs+keys+encrypted == 0:
		v.errorf(key, "%q holds no certificate or private key (only PEM blocks of type %s): give %s (%s)",
			path, strings.Join(types, ", "), what, example)
	case wantKey && keys == 0 && encrypted > 0:
		v.errorf(key, "%q holds an encrypted private key: the sidecar cannot ask for a passphrase; "+
			"give the key unencrypted, in a file only the sidecar's user can read", path)
	case wantKey && keys == 0:
		v.errorf(key, "%q holds a certificate, not a private key: key_file takes the key (%s); "+
			"were cert_file and key_file swapped?", path, example)
	case !wantKey && certs == 0:
		v.errorf(key, "%q holds a private key, not a certificate: cert_file takes the client certificate (%s); "+
			"were cert_file and key_file swapped?", path, example)
	default:
		return true
	}
	return false
}

// policyPrefix ends a KV prefix with "/", so "sidecar/policies" does not
// also match "sidecar/policies-old/".
// DefaultFleetPrefix is consul.fleet_prefix when it is not set.
const DefaultFleetPrefix = "sidecar/fleet/"

// fleetPrefix is consul.fleet_prefix resolved: the default when unset, ""
// (no reports) when set to "".
func fleetPrefix(p *string) string {
	if p == nil {
		return DefaultFleetPrefix
	}
	return policyPrefix(*p)
}

func policyPrefix(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func (v *validator) health(h *healthFile, notify map[string]*notifyFile) {
	v.duration("health.heartbeat_interval", h.HeartbeatInterval, false)
	if h.MissedHeartbeats != nil && *h.MissedHeartbeats < 1 {
		v.errorf("health.missed_heartbeats", "must be at least 1, got %d", *h.MissedHeartbeats)
	}
	v.duration("health.grace", h.Grace, true)
	v.duration("health.stall_after", h.StallAfter, true)
	v.duration("health.liveness_after", h.LivenessAfter, true)
	defined := make([]string, 0, len(notify))
	for name := range notify {
		defined = append(defined, name)
	}
	sort.Strings(defined)
	list := "none"
	if len(defined) > 0 {
		list = strings.Join(defined, ", ")
	}
	for _, name := range h.Notify {
		if _, ok := notify[name]; !ok {
			v.errorf("health.notify", "no notify block named %q; defined: %s%s", name, list, didYouMean(name, defined))
		}
	}
	if p := h.Probe; p != nil {
		if p.URL == nil {
			v.required("health.probe.url", `the agent's health URL, e.g. url = "`+exampleProbeURL+`"`)
		} else if problem := checkSecretURL(*p.URL, exampleProbeURL); problem != "" {
			v.errorf("health.probe.url", "%s", problem)
		}
		v.duration("health.probe.interval", p.Interval, false)
		v.duration("health.probe.timeout", p.Timeout, false)
	}
}

func (v *validator) notify(name string, n *notifyFile) {
	key := "notify." + name
	if n.Webhook == nil {
		v.required(key+".webhook", `the URL notifications are POSTed to, e.g. webhook = "`+exampleWebhook+`"`)
	} else if problem := checkSecretURL(*n.Webhook, exampleWebhook); problem != "" {
		v.errorf(key+".webhook", "%s", problem)
	}
	v.headers(key+".headers", n.Headers)
	v.duration(key+".timeout", n.Timeout, false)
	if n.Retries != nil && *n.Retries < 0 {
		v.errorf(key+".retries", "must be 0 or more, got %d", *n.Retries)
	}
}

// headers checks the headers sent with a request (a notify target's, the
// tracing exporter's): valid names, values without line breaks.
func (v *validator) headers(key string, headers map[string]string) {
	for _, h := range sortedKeys(headers) {
		switch {
		case !validHeaderName(h):
			v.errorf(key, "%q is not a valid HTTP header name", h)
		case strings.ContainsAny(headers[h], "\r\n"):
			// The value is a secret: name the header, never the value.
			v.errorf(key, "the value of header %q contains a line break", h)
		}
	}
}

// validHeaderName reports whether s is an HTTP header field name (an RFC
// 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// checkCAFile returns a problem description unless path is a readable PEM
// file with at least one certificate.
func checkCAFile(path string) string {
	if path == "" {
		return "must not be empty: remove it to trust the system's certificate authorities only"
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("cannot read %q: %v", path, errors.Unwrap(err))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Sprintf("%q holds no PEM certificate: give a bundle of CA certificates (-----BEGIN CERTIFICATE-----)", path)
	}
	return ""
}

// CertPool returns the system's certificate authorities plus those of
// CAFile; nil (the system's) when CAFile is empty or unreadable (Load has
// checked it).
func (t TLS) CertPool() *x509.CertPool {
	if t.CAFile == "" {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return pool
}

// LookupUser resolves a user name or numeric uid to its uid and primary
// gid; problem says why it cannot.
func LookupUser(name string) (uid, gid uint32, problem string) {
	if name == "" {
		return 0, 0, "must not be empty: remove it to run the agent as the sidecar's own user"
	}
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return 0, 0, fmt.Sprintf("no user %q on this host: give an existing user name or numeric uid", name)
		}
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Sprintf("user %q has a uid or gid that is not a number", name)
	}
	return uint32(id), uint32(g), ""
}

// weakToken reports whether a set token (listen.token, ingress.token, an
// upstream's ingress_token) is shorter than 16 characters or holds a space
// or line break.
func weakToken(t string) bool {
	return t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n"))
}
