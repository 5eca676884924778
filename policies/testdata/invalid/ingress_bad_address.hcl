agent {
  name = "writer"
  port = 8081
}

ingress {
  address = "7080"
}
