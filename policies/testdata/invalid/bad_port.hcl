agent {
  name = "writer"
  port = 70000
}
