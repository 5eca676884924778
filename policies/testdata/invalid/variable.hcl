agent {
  name = writer
}
