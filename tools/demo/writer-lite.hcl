# writer-lite: the Node example agent (examples/node), the fallback service
# of "writer": it answers with the lighter model only.
agent {
  name = "writer-lite"
  id   = "writer-lite-1"
  port = 18083
  tags = ["node", "demo"]
  exec {
    command = ["node", "examples/node/agent.mjs"]
    env     = { AGENT_PORT = "18083", HEARTBEAT_EVERY = "1", MODEL = "gpt-4o-mini" }
    restart_on_isolation = true
    stop_timeout         = "3s"
  }
}

listen { address = "127.0.0.1:17073" }

ingress {
  address = "127.0.0.1:17083"
  timeout = "10s"
}
