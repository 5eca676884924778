agent {
  name = "writer"
}

model "gpt-4o" {
  provider = "openai"
}
