agent {
  name = "writer"
}

breakr "default" {
  consecutive_failures = 3
}
