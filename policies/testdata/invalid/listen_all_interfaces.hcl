agent {
  name = "writer"
}

listen {
  address      = ":7070"
  allow_remote = false
}
