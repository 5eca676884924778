package policies

import "strings"

// passEnv checks agent.exec.pass_env: each entry is a variable name, or a
// prefix of one followed by "*".
func (v *validator) passEnv(list []string) {
	for _, p := range list {
		name := strings.TrimSuffix(p, "*")
		switch {
		case p == "*":
			v.errorf("agent.exec.pass_env", `"*" would pass every variable of the sidecar, its secrets included: `+
				`name the variables the agent needs, or a prefix such as "MYAGENT_*"`)
		case !envNameOK(name):
			v.errorf("agent.exec.pass_env", "%q is not a variable name: use letters, digits and _ (not starting "+
				`with a digit), optionally ending in "*" for a prefix, e.g. "HTTPS_PROXY" or "MYAGENT_*"`, p)
		}
	}
}

func envNameOK(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
