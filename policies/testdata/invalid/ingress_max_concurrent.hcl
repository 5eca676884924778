agent {
  name = "writer"
  port = 8081
}

ingress {
  address        = "0.0.0.0:7080"
  max_concurrent = -1
}
