agent { name = "writer" }

model "gpt-4o" {
  provider = "openai"
  price {
    input        = -2.5
    output       = 10
    cached_input = -1
  }
}

model "gpt-4o-mini" {
  provider = "openai"
  price {
    cached_input = 0.075
  }
}
