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
  #   restart_on_isolation = true     # restart when the agent is isolated
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
  # Names besides the bound address and localhost that requests may be
  # addressed to (allow_remote only); any other Host is refused.
  # allowed_hosts   = ["sidecar.internal"]
  max_connections   = 2048 # open connections; more wait to be accepted
  body_read_timeout = "1m" # a request's body must arrive within this
  # A read-only listener for a kubelet: GET /v1/agent/live, /v1/agent/ready
  # and /v1/health only, any Host, no token. "": none.
  probe_address = ""
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
  liveness_after     = "0s" # GET /v1/agent/live fails once the agent is isolated this long
  # notify           = ["ops"] # notify blocks to tell about isolation and recovery; unset: every one, []: none

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

# Circuit breakers. Every call through the sidecar passes one; an open
# breaker sends calls straight to their fallback. The "default" breaker
# always exists (these are its built-in values); other breakers take the
# same defaults for the keys they leave out.
breaker "default" {
  consecutive_failures = 3      # failures in a row that open the breaker
  failure_rate         = 0      # 1-100: also open when this percent of calls failed; 0: off
  min_calls            = 10     # calls within window before failure_rate applies
  window               = "1m"   # the period failure_rate looks at
  open_for             = "30s"  # open this long, then let probe calls through
  max_open_for         = "10m"  # each re-opening doubles open_for, up to this
  half_open_probes     = 1      # probe calls that must succeed to close it
  failure_statuses     = [429, "5xx"] # status numbers or the classes "4xx", "5xx"
  slow_call            = "0s"   # "0s": off; else a slower call counts as a failure
}

# A target the agent calls as http://127.0.0.1:7070/call/researcher/...
# upstream "researcher" {
#   service  = "researcher"             # Consul service; default: the block's name
#   # url    = "http://127.0.0.1:9200"  # or a static base URL instead of Consul
#   tags     = ["capability:summarize"] # Consul only: instances with all these tags
#   filter   = "Service.Meta.tier == \"full\"" # Consul only: a Consul filter expression
#   breaker  = "default"                # a breaker block, one breaker per instance
#   timeout  = "60s"                    # the whole call, retries included
#   retries  = 1                        # on another instance, only when safe to repeat
#   fallback = ["researcher-lite"]      # upstreams tried in order when none can answer
#   balance  = "round_robin"            # round_robin | least_outstanding
# }

# Optional: a task port in front of the agent (needs agent.port). Tasks go
# to the agent, else to a healthy peer found in Consul, else to fallback.
# ingress {
#   address  = "0.0.0.0:7080"   # required
#   breaker  = "default"
#   timeout  = "2m"
#   fallback = ["writer-lite"]  # upstream names
#   token    = env("SIDECAR_INGRESS_TOKEN") # callers send X-Sidecar-Ingress-Token
#   max_connections   = 2048
#   body_read_timeout = "1m"
# }

# A model the agent calls through the model gateway (OPENAI_BASE_URL or
# ANTHROPIC_BASE_URL pointing at the sidecar), by its label.
# model "gpt-4o" {
#   provider            = "openai"                    # required: openai | anthropic
#   base_url            = "https://api.openai.com/v1" # default per provider; anthropic: "https://api.anthropic.com"
#   api_key             = env("OPENAI_API_KEY")       # sent instead of the agent's own credentials; "": the agent's
#   headers             = { OpenAI-Organization = "org-…" } # extra headers; values are secrets
#   name                = "gpt-4o"                    # model name sent upstream; default: the label
#   breaker             = "default"
#   timeout             = "2m"                        # the whole call
#   first_byte_timeout  = "30s"                       # a stream's first event; at most timeout
#   stream_idle_timeout = "60s"                       # silence between two events of a stream
#   fallback            = "gpt-4o-mini"               # a model of either provider
#   max_tokens          = 0                           # cap on the answer; 0: none
#   drop_fields         = ["parallel_tool_calls"]     # request fields removed for this model
#   degrade_on          = ["empty", "invalid_json"]   # answers that count as failures
# }

# The model gateway.
gateway {
  max_request_bytes = 10485760 # 10 MiB; at least 1024
}
