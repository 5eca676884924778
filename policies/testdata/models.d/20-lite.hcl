model "gpt-4o-mini" {
  provider   = "openai"
  max_tokens = 1024
}

gateway {
  max_request_bytes = 1024
}
