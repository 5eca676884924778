package supervise

import (
	"slices"
	"strings"
)

// agentEnvAllowed are the variables of the sidecar's environment that the
// supervised agent inherits without being asked: where things are, who and
// where it runs, how to print. Anything else (provider keys, Consul and
// webhook tokens, the sidecar's own settings) reaches the agent only when
// agent.exec.pass_env names it.
var agentEnvAllowed = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "COLORTERM", "NO_COLOR",
	"LANG", "LANGUAGE", "TZ", "TZDIR", "TMPDIR", "HOSTNAME",
	"XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// agentEnvAllowedPrefixes are inherited like agentEnvAllowed.
var agentEnvAllowedPrefixes = []string{"LC_"}

// agentEnviron builds the agent's environment: the allowed variables of the
// sidecar's environment and those pass matches (a name, or a prefix ending
// in "*"), then sidecarVars (the SIDECAR_* variables the sidecar sets, and
// for another user its USER, LOGNAME and HOME), then exec.env (later
// entries win).
func agentEnviron(environ []string, pass []string, sidecarVars []string, extra map[string]string) []string {
	env := make([]string, 0, len(agentEnvAllowed)+len(sidecarVars)+len(extra))
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if ok && name != "" && (inheritedByDefault(name) || matchesPassEnv(name, pass)) {
			env = append(env, kv)
		}
	}
	env = append(env, sidecarVars...)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

func inheritedByDefault(name string) bool {
	if slices.Contains(agentEnvAllowed, name) {
		return true
	}
	for _, p := range agentEnvAllowedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// matchesPassEnv reports whether name is one of pass: an exact name, or
// PREFIX* for every name starting with PREFIX.
func matchesPassEnv(name string, pass []string) bool {
	for _, p := range pass {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if prefix != "" && strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return false
}
