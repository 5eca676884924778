# researcher: the Go example agent (examples/go), called by the writers and
# the indexer through their sidecars' /call/researcher/.
agent {
  name = "researcher"
  id   = "researcher-1"
  port = 18084
  tags = ["go", "demo"]
  exec {
    command = ["bin/agent-go"]
    env     = { AGENT_PORT = "18084", HEARTBEAT_EVERY = "1", MODEL = "gpt-4o" }
    restart_on_isolation = true
    stop_timeout         = "3s"
  }
}

listen { address = "127.0.0.1:17074" }

ingress {
  address = "127.0.0.1:17084"
  timeout = "10s"
}
