# The sidecar of compose.exec.yaml: one container (Dockerfile.python) in
# which the sidecar starts the agent and restarts it when it exits or is
# isolated, as outside containers.
agent {
  name    = "writer"
  id      = "writer-1"
  address = "writer"     # the compose service: how other containers reach the agent
  port    = 8081
  tags    = ["python", "compose"]
  exec {
    command = ["python3", "/app/agent.py"]   # copied into the image by Dockerfile.python
    env     = { AGENT_HOST = "0.0.0.0", AGENT_PORT = "8081", MODEL = "gpt-4o" }
    # restart_on_isolation = true (the default): a hung agent is restarted
    stop_timeout = "5s"
  }
}

listen { address = "127.0.0.1:7070" }   # loopback: the agent is in the same container

consul { deregister_critical_after = "10m" }   # address: CONSUL_HTTP_ADDR

health {
  heartbeat_interval = "10s"
  missed_heartbeats  = 2
  grace              = "5s"
  # notify unset: every notify block hears of each isolation and recovery.
}

# Operations: uncomment with your webhook (e.g. a Slack incoming webhook).
# notify "ops" { webhook = "https://hooks.example.com/agents" }
