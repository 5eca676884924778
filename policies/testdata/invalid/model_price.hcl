agent { name = "writer" }

model "gpt-4o" {
  provider = "openai"
  price {
    input        = 2.5
    output       = "ten"
    cached_input = 1
    cache_write  = 1e400
    discount     = 0.5
  }
}

model "embed" {
  provider = "openai"
  price = 0.02
}
