agent {
  name = "writer"
}

health {
  heartbeat_interval = "5x"
}
