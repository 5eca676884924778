agent {
  name = "writer"
  name = "reader"
}
