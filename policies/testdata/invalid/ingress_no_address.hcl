agent {
  name = "writer"
  port = 8081
}

ingress {
  breaker  = "fats"
  timeout  = "1x"
  fallback = ["writer-lite"]
}
