# The demo's sidecar: the example Python agent under supervision, with short
# intervals so a hang is detected in seconds. scripts/demo.sh runs it.
agent {
  name = "writer"
  id   = "writer-1"
  port = 18081
  tags = ["python", "demo"]
  meta = { example = "examples/python/agent.py" }
  exec {
    command = ["python3", "examples/python/agent.py"]
    env     = { AGENT_PORT = "18081", HEARTBEAT_EVERY = "2", MODEL = "gpt-4o" }
    restart_on_isolation = true
    stop_timeout = "3s"
  }
}

listen { address = "127.0.0.1:17070" }

consul { deregister_critical_after = "1m" }   # address: CONSUL_HTTP_ADDR

health {
  heartbeat_interval = "2s"
  missed_heartbeats  = 2
  grace              = "1s"
  stall_after        = "6s"
  notify             = ["ops"]
}

notify "ops" {
  webhook = "http://127.0.0.1:19090/events"
  retries = 2
}

# Calls through the sidecar: GET/POST $SIDECAR_ADDR/call/search/... goes to
# the search service; after 3 consecutive failures its breaker opens for 5s
# and calls go straight to search-lite.
breaker "default" {
  consecutive_failures = 3
  open_for             = "5s"
}

upstream "search" {
  url      = "http://127.0.0.1:19101"
  fallback = ["search-lite"]
}

upstream "search-lite" {
  url = "http://127.0.0.1:19102"
}

# Model calls: the agent sends OpenAI chat completions to
# $SIDECAR_ADDR/llm/v1 for "gpt-4o". When it fails (or its breaker is open)
# the same request goes to the lighter "gpt-4o-mini", with max_tokens capped
# and tools dropped. Both are fake models here (examples/fakellm).
model "gpt-4o" {
  provider           = "openai"
  base_url           = "http://127.0.0.1:19201/v1"
  api_key            = env("DEMO_MODEL_KEY")   # injected by the sidecar; the agent has no key
  first_byte_timeout = "5s"
  fallback           = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider    = "openai"
  base_url    = "http://127.0.0.1:19202/v1"
  api_key     = env("DEMO_MODEL_KEY")
  max_tokens  = 1024
  drop_fields = ["tools", "parallel_tool_calls"]
}
