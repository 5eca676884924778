// Package policies loads the sidecar's HCL configuration and policy files:
// parsing (hcl/v2), decoding (mapstructure), defaults, and validation with
// file:line:col errors. The types in this file are the resolved runtime
// configuration that the rest of the sidecar reads; they carry plain Go types
// (time.Duration, int, string) and never pointers.
package policies

import "time"

// Config is the resolved configuration of one sidecar.
type Config struct {
	Agent  Agent
	Listen Listen
	Consul Consul
	Health Health
	// Notify holds the notification targets by name (the label of each
	// `notify "NAME" { ... }` block).
	Notify map[string]Notify

	// Sources lists the files the configuration was read from, in load order.
	// Empty for the built-in -dev configuration.
	Sources []string
}

// Agent describes the agent the sidecar runs beside.
type Agent struct {
	Name    string            // Consul service name. Required in files; "agent" under -dev.
	ID      string            // Consul service ID. Default: Name.
	Address string            // Address the agent takes tasks on. Default "127.0.0.1".
	Port    int               // Port the agent takes tasks on. Default 0 (none).
	Tags    []string          // Extra Consul tags; "ai-agent" is always added by the sidecar.
	Meta    map[string]string // Consul service meta.
	Exec    *Exec             // Nil unless the sidecar supervises the agent process.
}

// Restart policies for a supervised agent.
const (
	RestartAlways    = "always"     // restart whenever the process exits
	RestartOnFailure = "on-failure" // restart when it exits non-zero or by a signal
	RestartNever     = "never"      // never restart (isolation restarts still apply)
)

// Exec describes a supervised agent process.
type Exec struct {
	Command            []string          // argv; required, at least one element.
	Env                map[string]string // extra environment, added to the sidecar's own.
	Dir                string            // working directory. Default: the sidecar's.
	Restart            string            // RestartAlways (default) | RestartOnFailure | RestartNever.
	RestartOnIsolation bool              // restart the process when the agent is isolated. Default false.
	StopTimeout        time.Duration     // SIGTERM → SIGKILL grace. Default 10s.
	RestartBackoff     time.Duration     // first restart delay, doubled per quick exit. Default 1s.
	MaxRestartBackoff  time.Duration     // cap of the restart delay. Default 1m.
}

// Listen is the control API listener.
type Listen struct {
	Address     string // Default "127.0.0.1:7070".
	AllowRemote bool   // Must be true for a non-loopback Address. Default false.
}

// Consul describes how to reach the local Consul agent.
type Consul struct {
	Address                 string        // Default: $CONSUL_HTTP_ADDR, else "127.0.0.1:8500".
	Token                   string        // Default: $CONSUL_HTTP_TOKEN. Secret: never logged.
	DeregisterCriticalAfter time.Duration // Default 72h; minimum 1m (Consul's own minimum).
	SyncInterval            time.Duration // How often registration is verified. Default 5s.
}

// Health describes heartbeat tracking.
type Health struct {
	HeartbeatInterval time.Duration // Default 5m.
	MissedHeartbeats  int           // Default 2; at least 1.
	Grace             time.Duration // Default 30s.
	StallAfter        time.Duration // 0 (default) disables stall detection.
	Notify            []string      // names of notify blocks; each must exist.
	Probe             *Probe        // nil unless the sidecar probes the agent.
}

// TTL is the Consul TTL of the heartbeat check: missed × interval + grace.
func (h Health) TTL() time.Duration {
	return time.Duration(h.MissedHeartbeats)*h.HeartbeatInterval + h.Grace
}

// Probe makes the sidecar poll an HTTP URL of the agent; each 2xx counts as
// a heartbeat.
type Probe struct {
	URL      string        // http(s) URL; required.
	Interval time.Duration // Default: the heartbeat interval.
	Timeout  time.Duration // Default 5s.
}

// Notify is a notification target.
type Notify struct {
	Name    string
	Webhook string            // http(s) URL; required.
	Headers map[string]string // sent with every POST; values are secrets.
	Timeout time.Duration     // per attempt. Default 10s.
	Retries int               // attempts after the first. Default 5.
}
