agent {
  name = "writer"
}

consul {
  address = "10.1.1.1:8500"
  token   = "file-token"
}
