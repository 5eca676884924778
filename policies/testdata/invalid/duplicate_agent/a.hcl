agent {
  name = "writer"
}
