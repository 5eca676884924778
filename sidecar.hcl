# sidecar.hcl — a working configuration to copy first, and the container
# image's default (/etc/sidecar/sidecar.hcl).
#
#   make build consul
#   $(make -s consul) agent -dev &          # a local Consul with its UI on :8500
#   python3 examples/python/agent.py &      # the agent: tasks on :8081, heartbeats to :7070
#   bin/sidecar agent -config sidecar.hcl
#
# Every key is optional unless marked "required"; the values shown here that
# are not the defaults say so. `sidecar validate sidecar.hcl` checks a file.

agent {
  name = "writer"            # required: the Consul service name
  id   = "writer-1"          # Consul service ID (default: name); unique per Consul agent
  address = "127.0.0.1"      # where the agent takes tasks (default 127.0.0.1)
  port    = 8081             # (default 0: the agent takes no tasks over HTTP)
  tags    = ["python", "example"]   # "ai-agent" is always added
  meta    = { team = "platform" }

  # Optional: the sidecar starts the agent, passes its output through,
  # restarts it when it exits, and restarts it when it is isolated. Without
  # it (as here, and in a container beside the agent's) the agent runs on
  # its own and only heartbeats; there, GET /v1/agent/live (listen.probe_address)
  # lets Kubernetes restart a hung agent.
  # exec {
  #   command = ["python3", "examples/python/agent.py"]
  #   env     = { AGENT_PORT = "8081", HEARTBEAT_EVERY = "10" }
  #   restart = "always"               # always (default) | on-failure | never
  #   restart_on_isolation = true      # restart a hung agent (default true)
  #   stop_timeout = "10s"             # SIGTERM, then SIGKILL after this (default 10s)
  # }
}

listen {
  address = "127.0.0.1:7070"   # the control API (default); loopback only unless allow_remote = true
  # A read-only listener for a kubelet: GET /v1/agent/live, /v1/agent/ready and
  # /v1/health only, any Host, no token (default: none).
  # probe_address = "0.0.0.0:7071"
}

consul {
  # address and token default to CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN, then 127.0.0.1:8500.
  # token = env("CONSUL_HTTP_TOKEN")
  deregister_critical_after = "72h"   # Consul removes an agent critical this long (default 72h, minimum 1m)
  # fleet_prefix = "sidecar/fleet/"   # KV prefix of this sidecar's report for `sidecar fleet` ("" writes none)
  # HTTPS: address = "https://127.0.0.1:8501" (or CONSUL_HTTP_SSL=true); the files alone do not switch to it.
  # Each defaults to its variable: CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME.
  # ca_file         = "/etc/consul.d/consul-agent-ca.pem"    # the CA that signed Consul's certificate
  # cert_file       = "/etc/sidecar/consul-client.pem"       # with key_file, when Consul verifies clients
  # key_file        = "/etc/sidecar/consul-client-key.pem"
  # tls_server_name = "server.dc1.consul"                    # when the address is a name the certificate lacks
  # insecure_skip_verify = false                             # true accepts any certificate (warned at start)
}

health {
  heartbeat_interval = "30s"   # default 5m
  missed_heartbeats  = 2       # isolated after 2 missed heartbeats (default 2)
  grace              = "5s"    # extra slack after the last missed one (default 30s)
  stall_after        = "10m"   # isolated when progress is frozen this long (default: off)
  # liveness_after   = "0s"    # GET /v1/agent/live fails once isolated this long (default 0s)
  # notify           = ["ops"] # notify blocks told of isolations (default: every one; [] tells none)

  # For agents that cannot send heartbeats: each 2xx of this URL counts as one.
  # probe { url = "http://127.0.0.1:8081/healthz"  interval = "30s"  timeout = "5s" }
}

# A webhook receives agent.isolated and agent.recovered events as JSON.
# Every notify block is told unless health.notify names some (or is []).
# notify "ops" {
#   webhook = "https://hooks.example.com/agents"
#   headers = { Authorization = env("HOOK_TOKEN") }
# }

# Model calls: point the agent's SDK at the sidecar
#   OPENAI_BASE_URL=http://127.0.0.1:7070/llm/v1   ANTHROPIC_BASE_URL=http://127.0.0.1:7070/llm
# and ask for "gpt-4o". When it fails (or its breaker is open) the same
# request goes to "gpt-4o-mini"; the answer says so in X-Sidecar-Degraded.
model "gpt-4o" {
  provider = "openai"                         # openai | anthropic (wire format)
  base_url = "https://api.openai.com/v1"      # the default for openai
  api_key  = env("OPENAI_API_KEY")            # injected by the sidecar; the agent needs no key
  breaker  = "default"
  timeout  = "120s"                           # the whole call (default 2m)
  first_byte_timeout = "20s"                  # a stream's first event (default 30s)
  fallback = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider    = "openai"
  api_key     = env("OPENAI_API_KEY")
  max_tokens  = 1024                          # caps the answer's length
  drop_fields = ["parallel_tool_calls"]       # fields this model does not take
  degrade_on  = ["empty"]                     # an empty answer counts as a failure
}

# OpenTelemetry traces (off by default; see docs/tracing.md). The OTEL_*
# variables work too: OTEL_TRACES_EXPORTER=otlp turns tracing on, and they
# fill what this block leaves unset.
# tracing {
#   enabled      = true
#   endpoint     = "http://localhost:4318"   # OTLP collector (default: OTEL_EXPORTER_OTLP_ENDPOINT)
#   protocol     = "http/protobuf"           # or "grpc" (endpoint http://localhost:4317)
#   sample_ratio = 0.1                       # keep 1 trace in 10 (default: every trace)
#   headers      = { "x-api-key" = env("OTEL_COLLECTOR_KEY") }
# }
