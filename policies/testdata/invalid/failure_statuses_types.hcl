agent {
  name = "writer"
}

breaker "a" {
  failure_statuses = "5xx"
}

breaker "b" {
  failure_statuses = [500, true]
}

breaker "c" {
  failure_statuses = [502.5]
}

breaker "d" {
  failure_statuses = 503
}
