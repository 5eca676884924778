# Policy blocks may live in their own files, shared by many agents.
notify "pager" {
  webhook = "https://pager.example.com/v1/alert"
}
