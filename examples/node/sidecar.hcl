# The Node example agent beside its sidecar. From the repository root:
#
#   make build consul
#   $(make -s consul) agent -dev &                                # Consul, UI on :8500
#   bin/fakellm -addr 127.0.0.1:9201 -name gpt-4o &               # two fake models
#   bin/fakellm -addr 127.0.0.1:9202 -name gpt-4o-mini &
#   npm ci --prefix examples/node                                 # agent-sidecar and openai
#   bin/sidecar agent -config examples/node/sidecar.hcl           # starts the agent
#   curl -X POST -d '{"input":"a haiku"}' 127.0.0.1:8082/task

agent {
  name = "summarizer"
  id   = "summarizer-1"
  port = 8082                         # where the agent takes tasks
  tags = ["node", "example"]
  exec {
    command = ["node", "examples/node/agent.mjs"]   # relative to where the sidecar starts: the repository root
    env     = { AGENT_PORT = "8082", HEARTBEAT_EVERY = "5", MODEL = "gpt-4o", PEER = "researcher" }
    restart_on_isolation = true       # a hung agent is restarted (the default)
  }
}

listen { address = "127.0.0.1:7072" }   # SIDECAR_ADDR for the agent; set by the sidecar

health {
  heartbeat_interval = "10s"
  missed_heartbeats  = 2
  grace              = "5s"
}

breaker "default" {
  consecutive_failures = 3
  open_for             = "10s"
}

# The agent calls $SIDECAR_ADDR/call/researcher/task: the passing instances
# of the service "researcher", found in Consul, each behind its own breaker.
upstream "researcher" {}

# The agent asks for "gpt-4o" at $SIDECAR_ADDR/llm/v1 (the openai package's
# baseURL); when it fails the same request goes to "gpt-4o-mini". Both are the
# fake models of test/fakellm here (bin/fakellm -addr 127.0.0.1:9201
# -name gpt-4o, and bin/fakellm -addr 127.0.0.1:9202 -name gpt-4o-mini); for
# OpenAI itself, set base_url = "https://api.openai.com/v1" and export
# OPENAI_API_KEY (the sidecar adds it; the agent never sees it).
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
