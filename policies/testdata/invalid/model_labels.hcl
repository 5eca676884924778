agent {
  name = "writer"
}

model "" {
  provider = "openai"
}

model "gpt 4o" {
  provider = "openai"
}

model "gpt-4o\u0007" {
  provider = "openai"
}

model {
  provider = "openai"
}

model "a" "b" {
  provider = "openai"
}
