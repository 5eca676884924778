agent {
  name = "writer"
}

consul {
  token = env("SIDECAR_TEST_CONSUL_TOKEN")
}

notify "ops" {
  webhook = "https://hook-user:hook-pass@hooks.example.com/agents?key=query-secret#frag-secret"
  headers = {
    Authorization = env("SIDECAR_TEST_HOOK_TOKEN")
    X-Api-Key     = "literal-header-secret"
  }
}
