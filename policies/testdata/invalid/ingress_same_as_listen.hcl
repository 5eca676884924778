agent {
  name = "writer"
  port = 8081
}

listen {
  address = "127.0.0.1:7080"
}

ingress {
  address = "127.0.0.1:7080"
}
