agent {
  name = "writer"
}

consul {
  token = env("SIDECAR_TEST_CONSUL_TOKEN")
}

notify "ops" {
  webhook = "https://hook-user:hook-pass@hooks.example.com/agents?key=query-secret#frag-secret"
  headers = {
    Authorization = env("SIDECAR_TEST_HOOK_TOKEN")
    X-Api-Key     = "literal-header-secret"
  }
}

model "gpt-4o" {
  provider = "openai"
  api_key  = env("SIDECAR_TEST_MODEL_KEY")
  headers = {
    OpenAI-Organization = "org-header-secret"
    X-Gateway-Token     = env("SIDECAR_TEST_GATEWAY_TOKEN")
  }
}

model "claude" {
  provider = "anthropic"
  api_key  = "sk-ant-literal-secret"
}

model "local" {
  provider = "openai"
  base_url = "http://127.0.0.1:11434/v1"
}
