# Three unrelated mistakes: Load reports all of them.
agent {
  name = "writer"
  prot = 8081
}

health {
  heartbeat_interval = "5x"
}

listen {
  address = "0.0.0.0:7070"
}
