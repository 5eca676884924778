listen {
  address = "127.0.0.1:7070"
}
