agent {
  name = "writer"
}

health {
  missed_heartbeats = 0
}
