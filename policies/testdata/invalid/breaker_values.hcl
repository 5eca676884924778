# Every breaker value out of range.
agent {
  name = "writer"
}

breaker "default" {
  consecutive_failures = 0
  failure_rate         = 150
  min_calls            = 0
  window               = "soon"
  open_for             = "5m"
  max_open_for         = "1m"
  half_open_probes     = 0
  failure_statuses     = [429, "abc"]
  slow_call            = "-1s"
}

breaker "fast" {
  open_for         = "20m"
  failure_statuses = [404, 600]
}

breaker "classes" {
  failure_statuses = ["2xx"]
}
