# The agent block lacks its name.

agent {
  port = 8081
}
