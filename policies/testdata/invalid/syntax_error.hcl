agent {
  name = "writer"
  port = 
}
