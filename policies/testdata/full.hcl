# Every key set to a value other than its default.
agent {
  name    = "writer"
  id      = "writer-1"
  address = "10.0.0.5"
  port    = 8081
  tags    = ["gpu", "eu"]
  meta = {
    team = "research"
  }

  exec {
    command              = ["python3", "agent.py", "--serve"]
    env                  = { LOG_LEVEL = "debug", API_KEY = env("SIDECAR_TEST_API_KEY") }
    dir                  = "/srv/agent"
    restart              = "on-failure"
    restart_on_isolation = false
    stop_timeout         = "20s"
    restart_backoff      = "2s"
    max_restart_backoff  = "2m"
  }
}

listen {
  address      = "0.0.0.0:7171"
  allow_remote = true
  token        = "control-token-0123456789"

  allowed_hosts     = ["researcher.internal"]
  max_connections   = 500
  body_read_timeout = "30s"
  probe_address     = "0.0.0.0:7172"
}

consul {
  address                   = "https://consul.internal:8501"
  token                     = env("SIDECAR_TEST_CONSUL_TOKEN")
  deregister_critical_after = "24h"
  sync_interval             = "15s"
  # Test-only certificates (consul tls ca create / cert create -client, -days=36500).
  ca_file              = "testdata/consul-tls/ca.pem"
  cert_file            = "testdata/consul-tls/client.pem"
  key_file             = "testdata/consul-tls/client-key.pem"
  tls_server_name      = "server.dc1.consul"
  insecure_skip_verify = true
}

health {
  heartbeat_interval = "1m"
  missed_heartbeats  = 3
  grace              = "10s"
  stall_after        = "30m"
  liveness_after     = "2m"
  notify             = ["pager"]

  probe {
    url      = "http://127.0.0.1:8081/healthz"
    interval = "20s"
    timeout  = "2s"
  }
}

notify "ops" {
  webhook = "https://hooks.example.com/agents"
  headers = {
    Authorization = env("SIDECAR_TEST_HOOK_TOKEN")
  }
  timeout = "3s"
  retries = 2
}

notify "pager" {
  webhook = "https://pager.example.com/v1/alert"
  retries = 0
}

breaker "default" {
  consecutive_failures = 5
  failure_rate         = 50
  min_calls            = 20
  window               = "2m"
  open_for             = "10s"
  max_open_for         = "5m"
  half_open_probes     = 2
  failure_statuses     = [429, 502, "503", "5xx"]
  slow_call            = "45s"
}

breaker "strict" {
  consecutive_failures = 1
  failure_statuses     = ["4xx", 503]
}

upstream "researcher" {
  service  = "research-svc"
  tags     = ["capability:summarize", "eu"]
  filter   = "Service.Meta.tier == \"full\""
  breaker  = "strict"
  timeout  = "2m"
  retries  = 2
  fallback = ["researcher-lite", "static"]
  balance  = "least_outstanding"
}

upstream "researcher-lite" {
  filter  = "Service.Meta.tier == \"lite\""
  retries = 0
}

upstream "static" {
  url     = "http://127.0.0.1:9200/api"
  timeout = "5s"
}

ingress {
  address  = "0.0.0.0:7080"
  breaker  = "strict"
  timeout  = "90s"
  fallback = ["researcher-lite"]

  token             = "ingress-token-0123456789"
  max_connections   = 4000
  body_read_timeout = "2m"
}

model "gpt-4o" {
  provider            = "openai"
  base_url            = "https://llm.internal.example.com/openai/v1/"
  api_key             = env("SIDECAR_TEST_MODEL_KEY")
  headers             = { OpenAI-Organization = "org-research" }
  name                = "gpt-4o-2024-08-06"
  breaker             = "strict"
  timeout             = "90s"
  first_byte_timeout  = "15s"
  stream_idle_timeout = "20s"
  fallback            = "gpt-4o-mini"
  max_tokens          = 4096
  drop_fields         = ["parallel_tool_calls", "service_tier"]
  degrade_on          = ["empty", "invalid_json"]
}

model "gpt-4o-mini" {
  provider            = "openai"
  timeout             = "30s"
  first_byte_timeout  = "30s"
  stream_idle_timeout = "10s"
}

model "claude-3-5-haiku-latest" {
  provider = "anthropic"
  base_url = "https://anthropic-proxy.example.com/"
  name     = "claude-3-5-haiku-20241022"
  breaker  = "default"
}

gateway {
  max_request_bytes = 2097152
}

log {
  level = "debug"
  json  = true
}
