agent {
  name = "writer"
}

health {
  probe {
    url = "ftp://127.0.0.1/healthz"
  }
}
