# Optional blocks with only their required keys: the rest is defaulted.
agent {
  name = "writer"
  exec {
    command = ["node", "agent.js"]
  }
}

health {
  heartbeat_interval = "100ms"
  stall_after        = 0
  probe {
    url = "http://127.0.0.1:8081/healthz"
  }
}

listen {
  address = "[::1]:7070"
}
