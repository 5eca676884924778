# The configuration of the golden tests (golden_test.go): one of each kind
# of block a user writes. Addresses that must be free are bound on port 0;
# the webhook is the test's own server, read from the environment.
agent {
  name    = "writer"
  id      = "writer-1"
  address = "127.0.0.1"
  port    = 8081
  tags    = ["golden", "example"]
  meta    = { team = "platform" }
}

listen {
  address       = "127.0.0.1:0"
  probe_address = "127.0.0.1:0"
}

consul {
  address                   = "127.0.0.1:8500"
  token                     = "consul-secret-token-0123"
  deregister_critical_after = "72h"
}

health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "500ms"
  notify             = ["ops"]
}

notify "ops" {
  webhook = env("GOLDEN_WEBHOOK_URL")
  headers = { Authorization = "Bearer hook-secret-token-0123" }
  retries = 0
}

breaker "strict" {
  consecutive_failures = 2
  open_for             = "30s"
}

upstream "researcher" {
  service  = "research-svc"
  breaker  = "strict"
  timeout  = "10s"
  fallback = ["search"]
}

upstream "search" {
  url     = "https://search.example.com/v1"
  timeout = "5s"
}

ingress {
  address = "127.0.0.1:0"
  timeout = "30s"
}

model "gpt-4o" {
  provider = "openai"
  base_url = "https://llm.example.com/v1"
  api_key  = "sk-golden-model-key-0123456789"
  fallback = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider = "openai"
  base_url = "https://llm.example.com/v1"
  api_key  = "sk-golden-model-key-0123456789"
}
