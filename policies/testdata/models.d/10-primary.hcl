# A model may fall back to a model defined in another file.
model "gpt-4o" {
  provider = "openai"
  fallback = "gpt-4o-mini"
}
