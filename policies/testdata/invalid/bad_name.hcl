agent {
  name = "my_agent"
}
