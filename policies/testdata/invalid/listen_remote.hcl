agent {
  name = "writer"
}

listen {
  address = "0.0.0.0:7070"
}
