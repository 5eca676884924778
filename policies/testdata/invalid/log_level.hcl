agent {
  name = "writer"
}
log {
  level = "loud"
}
