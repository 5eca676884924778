# The sidecar of compose.yaml: it runs in its own container and holds the
# network namespace the agent's container joins (as a pod's containers
# share one). It does not start the agent; the agent's container health
# check asks its probe listener whether the agent should keep running, and
# autoheal (the profile "autoheal") restarts the agent's container when the
# answer is no.
agent {
  name    = "writer"
  id      = "writer-1"
  address = "sidecar"    # how other containers reach the agent: by the name of the namespace's container
  port    = 8081
  tags    = ["python", "compose"]
}

listen {
  address       = "127.0.0.1:7070"   # loopback: only the containers of this namespace
  probe_address = "127.0.0.1:7071"   # GET /v1/agent/live, /v1/agent/ready, /v1/health: the health check's
}

consul { deregister_critical_after = "10m" }   # address: CONSUL_HTTP_ADDR

health {
  heartbeat_interval = "10s"
  missed_heartbeats  = 2
  grace              = "5s"
  # notify unset: every notify block hears of each isolation and recovery.
}

# Operations: uncomment with your webhook (e.g. a Slack incoming webhook).
# notify "ops" { webhook = "https://hooks.example.com/agents" }
