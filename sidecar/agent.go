package sidecar

import (
	"fmt"
	"net"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
)

// superviseAgent prepares the supervisor of the agent process of
// cfg.Agent.Exec, which reaches the sidecar at control (the bound control
// listener): it is told where to heartbeat, with what token, and each
// restart counts as a fresh start for the heartbeat tracker.
func (s *Sidecar) superviseAgent(cfg *policies.Config, control net.Addr) *supervise.Supervisor {
	base := "http://" + loopbackURLHost(control)
	env := []string{
		"SIDECAR_ADDR=" + base,
		"SIDECAR_HEARTBEAT_URL=" + base + "/v1/heartbeat",
		"SIDECAR_AGENT_NAME=" + cfg.Agent.Name,
		"SIDECAR_AGENT_ID=" + cfg.Agent.ID,
	}
	if s.opts.Executable != "" {
		env = append(env, "SIDECAR_BIN="+s.opts.Executable)
	}
	if cfg.Listen.Token != "" {
		// The agent needs a token to heartbeat. Under token_scope "all"
		// it needs the control token for everything; under "mutating"
		// it gets a token of its own, good for heartbeats only, so it
		// cannot open breakers or reload.
		tok := cfg.Listen.Token
		if cfg.Listen.TokenScope == policies.TokenMutating {
			tok = s.heartbeatToken
		}
		env = append(env, "SIDECAR_TOKEN="+tok)
	}
	var sup *supervise.Supervisor
	sup = supervise.New(*cfg.Agent.Exec, supervise.Options{Log: s.log.Named("supervisor"), Env: env,
		Output: s.opts.AgentOutput, Now: s.now, OnStart: func(pid int) {
			s.tracker.Restarted(s.now())
			s.nudge()
			if st := sup.State(); st.Restarts > 0 {
				s.incidents.Restarted(st.Restarts, firstNonEmpty(st.LastRestartReason, st.LastExit, "it exited"), s.now())
				s.publish(notify.Event{Type: notify.EventAgentRestarted, Reason: st.LastRestartReason, Detail: st.LastExit,
					Text: fmt.Sprintf("Agent process restarted (pid %d, restart %d): %s.", pid, st.Restarts,
						firstNonEmpty(st.LastRestartReason, st.LastExit, "it exited"))})
			}
		}})
	return sup
}

// loopbackURLHost is the host:port an agent on this host uses to reach the
// listener: a wildcard bind address is replaced by 127.0.0.1.
func loopbackURLHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// KillAgent sends SIGKILL to the supervised agent's process group, for a
// forced exit that cannot wait for the graceful stop. Without agent.exec it
// does nothing.
func (s *Sidecar) KillAgent() {
	if s.supervisor != nil {
		s.supervisor.Kill()
	}
}
