agent {
  name = "writer"

  exec {
    restart = "always"
  }
}
