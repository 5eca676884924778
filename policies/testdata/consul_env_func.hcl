agent {
  name = "writer"
}

consul {
  token = env("SIDECAR_TEST_TOKEN_VAR")
}
