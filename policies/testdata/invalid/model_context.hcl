agent {
  name = "writer"
}

model "gpt-4o" {
  provider         = "openai"
  context_fallback = "gpt-4.1x"
  max_tokens_field = "max_completion_token"
}

model "gpt-4o-mini" {
  provider         = "openai"
  context_fallback = "claude-sonnet"
}

model "claude-sonnet" {
  provider         = "anthropic"
  max_tokens_field = "max_completion_tokens"
}

model "o3-mini" {
  provider         = "openai"
  max_tokens_field = "max_completion_tokens"
  drop_fields      = ["max_completion_tokens"]
  context_fallback = ""
}

model "gpt-4.1" {
  provider         = "openai"
  context_fallback = "gpt-4.1-long"
}

model "gpt-4.1-long" {
  provider         = "openai"
  context_fallback = "gpt-4.1"
}
