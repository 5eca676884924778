# The sidecar of the compose example: it runs beside the agent's container
# (same network namespace) and does not start the agent itself.
agent {
  name    = "writer"
  id      = "writer-1"
  address = "agent"      # how other containers reach the agent (registered in Consul)
  port    = 8081
  tags    = ["python", "compose"]
}

listen { address = "127.0.0.1:7070" }   # loopback: only the agent's namespace

consul { deregister_critical_after = "10m" }   # address: CONSUL_HTTP_ADDR

health {
  heartbeat_interval = "10s"
  missed_heartbeats  = 2
  grace              = "5s"
}

model "gpt-4o" {
  provider = "openai"
  base_url = "http://models:9201/v1"    # or https://api.openai.com/v1
  api_key  = env("OPENAI_API_KEY")
  fallback = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider   = "openai"
  base_url   = "http://models:9202/v1"
  api_key    = env("OPENAI_API_KEY")
  max_tokens = 1024
}
