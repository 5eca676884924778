notify "ops" {
  webhook = "https://hooks.example.com/agents"
}
