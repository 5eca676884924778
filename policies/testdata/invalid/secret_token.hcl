agent {
  name = "writer"
}

consul {
  token = ["s3cret-consul-token"]
}

notify "ops" {
  webhook = "https://hooks.example.com/agents"
  headers = {
    Authorization = ["s3cret-header-value"]
  }
}
