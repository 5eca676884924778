gateway {
  max_request_bytes = 2048
}
