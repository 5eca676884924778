// Package discovery is the sidecar's only link to Consul: it registers the
// agent as a Consul service with TTL checks, pushes check updates, and keeps
// the registration alive (re-registering after Consul lost its state). It is
// the only package that imports github.com/hashicorp/consul/api; it returns
// its own types.
package discovery

import "time"

// CheckStatus is the status of a Consul check.
type CheckStatus string

// Check statuses, as Consul spells them.
const (
	Passing  CheckStatus = "passing"
	Warning  CheckStatus = "warning"
	Critical CheckStatus = "critical"
)

// Config says how to reach the local Consul agent.
type Config struct {
	Address      string        // host:port or http(s)://host:port. Empty: CONSUL_HTTP_ADDR or 127.0.0.1:8500.
	Token        string        // ACL token. Secret: never logged, never in errors.
	SyncInterval time.Duration // how often the registration is verified. Default 5s.
	// RequestTimeout bounds each HTTP request to Consul, so a hung agent
	// cannot stall the sidecar. Default 10s.
	RequestTimeout time.Duration
	// TLS says how HTTPS to Consul is verified (see TLSConfig). HTTPS itself
	// is chosen by the address (https://…) or CONSUL_HTTP_SSL=true.
	TLS TLSConfig
}

// Check is a TTL check registered with the service.
type Check struct {
	ID                      string        // unique on the Consul agent, e.g. "writer-1:heartbeat"
	Name                    string        // shown in the Consul UI, e.g. "heartbeat"
	Notes                   string        // human text shown in the UI
	TTL                     time.Duration // Consul marks the check critical when not updated within TTL
	DeregisterCriticalAfter time.Duration // 0: never; Consul's minimum is 1m
}

// Service is what the sidecar registers in Consul.
type Service struct {
	ID      string
	Name    string
	Address string
	Port    int
	Tags    []string
	Meta    map[string]string
	Checks  []Check
}

// RegistrationState is a snapshot of the registration for status output.
type RegistrationState struct {
	Registered     bool      `json:"registered"`
	ConsulAddress  string    `json:"consul_address"`
	ServiceID      string    `json:"service_id"`
	LastRegistered time.Time `json:"last_registered,omitzero"`
	Registrations  int       `json:"registrations"` // successful (re-)registrations since start
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
}
