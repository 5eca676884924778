# Breaker, upstream and ingress blocks with only their required keys: the
# rest is defaulted, and the "default" breaker is implicit.
agent {
  name = "writer"
  port = 8081
}

breaker "slow" {
  open_for = "1m"
}

upstream "researcher" {}

upstream "static" {
  url = "https://tools.example.com"
}

ingress {
  address = "127.0.0.1:0"
}
