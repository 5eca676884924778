agent {
  name = "writer"
}

notify "ops" {
  webhook = "https://hooks.example.com/a"
}
