agent {
  name = "writer"
}

health {
  notify = ["ops", "opz"]
}

notify "ops" {
  webhook = "https://hooks.example.com/agents"
}
