# Sidecar configuration: a commented example.
#
# Every value below except agent.name is the default, so this file loads to
# the same configuration as one that sets only the agent's name. Copy it,
# change what you need, and delete the rest. env("NAME") reads an
# environment variable ("" when unset); use it for secrets.

# The agent the sidecar runs beside.
agent {
  # Consul service name: letters, digits and dashes. Required.
  name = "writer"

  # Consul service ID. Default: the name.
  # id = "writer-1"

  # Where the agent takes tasks (registered in Consul, used by ingress).
  address = "127.0.0.1"
  port    = 0 # 0: none

  # Extra Consul tags ("ai-agent" is always added) and service meta.
  # tags = ["gpu"]
  # meta = { team = "research" }

  # Optional: let the sidecar start and supervise the agent process.
  # exec {
  #   command              = ["python3", "agent.py"] # required
  #   env                  = { OPENAI_API_KEY = env("OPENAI_API_KEY") }
  #   dir                  = "/srv/agent"
  #   restart              = "always" # always | on-failure | never
  #   restart_on_isolation = false    # restart when the agent is isolated
  #   stop_timeout         = "10s"    # SIGTERM, then SIGKILL after this
  #   restart_backoff      = "1s"     # first restart delay, doubled per quick exit
  #   max_restart_backoff  = "1m"     # cap of the restart delay
  # }
}

# The control API the agent talks to (heartbeats, model gateway, calls).
listen {
  address = "127.0.0.1:7070"
  # The API has no authentication yet: a non-loopback address is refused
  # unless this is true.
  allow_remote = false
}

# The local Consul agent. When address or token is unset (or ""), the
# CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN environment variables are used.
consul {
  address                   = "127.0.0.1:8500" # or "https://host:8501"
  token                     = ""               # e.g. env("CONSUL_HTTP_TOKEN")
  deregister_critical_after = "72h"            # at least 1m
  sync_interval             = "5s"             # how often registration is verified
}

# Heartbeats: the agent POSTs /v1/heartbeat at least every interval. After
# missed_heartbeats intervals without one (plus grace), the agent is
# isolated and the notify targets are told.
health {
  heartbeat_interval = "5m"
  missed_heartbeats  = 2
  grace              = "30s"
  stall_after        = "0s" # "0s": off; else heartbeats without progress for this long count as missed
  # notify           = ["ops"] # notify blocks to tell about isolation and recovery

  # Optional: for agents that cannot heartbeat, poll a URL instead; each 2xx
  # counts as a heartbeat.
  # probe {
  #   url      = "http://127.0.0.1:8081/healthz" # required
  #   interval = "5m"                            # default: heartbeat_interval
  #   timeout  = "5s"
  # }
}

# A notification target: isolation and recovery are POSTed as JSON.
# notify "ops" {
#   webhook = "https://hooks.example.com/agents"          # required
#   headers = { Authorization = env("OPS_HOOK_TOKEN") }   # values are secrets
#   timeout = "10s"                                       # per attempt
#   retries = 5                                           # attempts after the first
# }
