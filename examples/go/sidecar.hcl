# The Go example agent beside its sidecar. From the repository root:
#
#   make build consul
#   go build -o bin/agent-go ./examples/go/agent
#   $(make -s consul) agent -dev &                                # Consul, UI on :8500
#   bin/fakellm -addr 127.0.0.1:9201 -name gpt-4o &               # two fake models
#   bin/fakellm -addr 127.0.0.1:9202 -name gpt-4o-mini &
#   bin/sidecar agent -config examples/go/sidecar.hcl             # starts the agent
#   curl -X POST -d '{"input":"a plan"}' 127.0.0.1:8083/task

agent {
  name = "planner"
  id   = "planner-1"
  port = 8083                         # where the agent takes tasks
  tags = ["go", "example"]
  exec {
    command = ["bin/agent-go"]        # relative to where the sidecar starts: the repository root
    env     = { AGENT_PORT = "8083", HEARTBEAT_EVERY = "5", MODEL = "gpt-4o", PEER = "researcher" }
    restart_on_isolation = true       # a hung agent is restarted (the default)
  }
}

listen { address = "127.0.0.1:7073" }   # SIDECAR_ADDR for the agent; set by the sidecar

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

# The agent asks for "gpt-4o" at $SIDECAR_ADDR/llm/v1; when it fails the same
# request goes to "gpt-4o-mini". Both are the fake models of test/fakellm
# here (bin/fakellm -addr 127.0.0.1:9201 -name gpt-4o, and
# bin/fakellm -addr 127.0.0.1:9202 -name gpt-4o-mini); for OpenAI itself, set
# base_url = "https://api.openai.com/v1" and export OPENAI_API_KEY (the
# sidecar adds it; the agent never sees it).
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
