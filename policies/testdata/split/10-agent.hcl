agent {
  name = "researcher"
  port = 9000
}
