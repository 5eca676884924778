notify "ops" {
  webhook = "http://127.0.0.1:9999/hook"
}
