listen {
  address = "127.0.0.1:7070"
}

agent {
  name = "writer-2"
}
