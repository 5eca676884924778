# The shell example agent beside its sidecar. From the repository root:
#
#   make build consul
#   $(make -s consul) agent -dev &                                # Consul, UI on :8500
#   bin/fakellm -addr 127.0.0.1:9201 -name gpt-4o &               # two fake models
#   bin/fakellm -addr 127.0.0.1:9202 -name gpt-4o-mini &
#   bin/sidecar agent -config examples/shell/sidecar.hcl          # starts the agent

agent {
  name = "indexer"
  id   = "indexer-1"
  tags = ["shell", "example"]      # no port: this agent takes no tasks over HTTP
  exec {
    command = ["sh", "examples/shell/agent.sh"]
    env     = { EVERY = "5", MODEL = "gpt-4o", PEER = "researcher" }
    restart_on_isolation = true
  }
}

listen { address = "127.0.0.1:7074" }   # SIDECAR_ADDR for the agent; set by the sidecar

health {
  heartbeat_interval = "10s"
  missed_heartbeats  = 2
  grace              = "5s"
  stall_after        = "1m"          # the round number is the progress: frozen for 1m → isolated
}

breaker "default" {
  consecutive_failures = 3
  open_for             = "10s"
}

# Each round calls $SIDECAR_ADDR/call/researcher/task: the passing instances
# of the Consul service "researcher".
upstream "researcher" {}

# The fake models of test/fakellm; for OpenAI itself, set
# base_url = "https://api.openai.com/v1" and export OPENAI_API_KEY.
model "gpt-4o" {
  provider = "openai"
  base_url = "http://127.0.0.1:9201/v1"
  api_key  = env("OPENAI_API_KEY")
  fallback = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider   = "openai"
  base_url   = "http://127.0.0.1:9202/v1"
  api_key    = env("OPENAI_API_KEY")
  max_tokens = 1024
}
