agent {
  name = "writer"
}

notify "ops" {
  webhook = "ftp://hook-user:url-s3cret@hooks.example.com/agents?key=url-s3cret"
  headers = {
    Authorization = env("SIDECAR_TEST_HOOK_TOKEN")
  }
}
