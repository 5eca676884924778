agent {
  name = "writer"
  port = "abc"
}
