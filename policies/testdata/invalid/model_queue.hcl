agent {
  name = "writer"
}

model "gpt-4o" {
  max_concurrent = -1
  rpm            = -5
  queue_timeout  = "-1s"
  provider       = "openai"
}

model "gpt-4o-mini" {
  queue_timeout   = "2s"
  embedding_space = " "
  provider        = "openai"
}
