agent {
  name = "writer"
  prot = 8081
}
