# Shared by every sidecar of the demo fleet (make demo); each sidecar also
# loads its own file (writer-1.hcl, …) with its agent, listeners and extra
# upstreams. Intervals are seconds so a failure is seen and handled quickly.

consul { deregister_critical_after = "1m" }   # address: CONSUL_HTTP_ADDR

health {
  heartbeat_interval = "2s"
  missed_heartbeats  = 2
  grace              = "1s"          # isolated 5s after the last heartbeat
  notify             = ["ops"]
}

# The demo itself listens here and prints what operations would be told.
notify "ops" {
  webhook = "http://127.0.0.1:19090/events"
  retries = 2
}

breaker "default" {
  consecutive_failures = 3
  open_for             = "5s"
}

# Writers (and the indexer) ask a researcher through /call/researcher/…: a
# passing instance of the Consul service, reached through its sidecar.
upstream "researcher" { timeout = "10s" }

# The fake models of test/fakellm. The agents ask for gpt-4o; when it
# fails, or its breaker is open, the same request goes to gpt-4o-mini; when
# both fail (OpenAI down), to claude-haiku, translated to Anthropic's API.
model "gpt-4o" {
  provider           = "openai"
  base_url           = "http://127.0.0.1:19201/v1"
  api_key            = env("DEMO_MODEL_KEY")   # injected by the sidecar; no agent has it
  timeout            = "10s"
  first_byte_timeout = "5s"
  fallback           = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider   = "openai"
  base_url   = "http://127.0.0.1:19202/v1"
  api_key    = env("DEMO_MODEL_KEY")
  max_tokens = 1024
  fallback   = "claude-haiku"
}

model "claude-haiku" {
  provider   = "anthropic"
  base_url   = "http://127.0.0.1:19203"
  name       = "claude-3-5-haiku-latest"
  api_key    = env("DEMO_MODEL_KEY")   # its own key: the agents' requests cross providers
  max_tokens = 1024
}
