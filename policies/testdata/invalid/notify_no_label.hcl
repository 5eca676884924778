agent {
  name = "writer"
}

notify {
  webhook = "https://hooks.example.com/agents"
}
