agent {
  name = "writer"
}

model "gpt-4o" {
  provider = "openai"
  fallback = "gpt-4o-mnii"
}

model "gpt-4o-mini" {
  provider = "openai"
  fallback = "claude-haiku"
}

model "claude-haiku" {
  provider = "anthropic"
}

model "backup" {
  provider = "openai"
  name     = "gpt-4o"
}

model "loop" {
  provider = "openai"
  fallback = "loop"
}

model "a" {
  provider = "anthropic"
  fallback = "b"
}

model "b" {
  provider = "anthropic"
  fallback = "c"
}

model "c" {
  provider = "anthropic"
  fallback = "b"
}
