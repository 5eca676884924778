agent {
  name = "writer"
}

ingress {
  address = "0.0.0.0:7080"
}
