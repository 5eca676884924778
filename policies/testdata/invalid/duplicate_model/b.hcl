gateway {}

model "gpt-4o" {
  provider = "anthropic"
}
