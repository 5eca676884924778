agent {
  name = "writer"
}

notify "ops" {
  webhook = "hooks.example.com/agents"
}
