agent {
  name = "writer"
}

consul {
  deregister_critical_after = "30s"
}
