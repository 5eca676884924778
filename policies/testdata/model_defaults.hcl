# Model blocks with only their required key (and a base URL for local
# servers): the rest is defaulted. The labels are spelled the way model
# names commonly are.
agent {
  name = "writer"
}

model "gpt-4o" {
  provider = "openai"
}

model "claude-3-5-haiku-latest" {
  provider = "anthropic"
}

model "llama3.1:8b" {
  provider = "openai"
  base_url = "http://127.0.0.1:11434/v1"
}

model "meta-llama/Llama-3-8B" {
  provider = "openai"
  base_url = "http://vllm.internal:8000/v1"
  api_key  = env("SIDECAR_TEST_UNSET_KEY")
}
