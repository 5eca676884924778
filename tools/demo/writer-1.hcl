# writer-1: the Python example agent (examples/python), one of two
# instances of the service "writer". Tasks arrive on the ingress (17081);
# when this agent cannot take them they go to its peer, then to writer-lite.
agent {
  name = "writer"
  id   = "writer-1"
  port = 18081
  tags = ["python", "demo"]
  exec {
    command = ["python3", "examples/python/agent.py"]
    env     = { AGENT_PORT = "18081", HEARTBEAT_EVERY = "1", MODEL = "gpt-4o", PEER = "researcher" }
    restart_on_isolation = true
    stop_timeout         = "3s"
  }
}

listen { address = "127.0.0.1:17071" }

ingress {
  address  = "127.0.0.1:17081"
  timeout  = "3s"                  # a hung agent's task goes to the peer after this
  fallback = ["writer-lite"]
}

upstream "writer-lite" { timeout = "10s" }
