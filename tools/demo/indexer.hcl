# indexer: the shell example agent (examples/shell), a batch job that
# reports with `sidecar heartbeat` after each round.
agent {
  name = "indexer"
  id   = "indexer-1"
  tags = ["shell", "demo"]
  exec {
    command = ["sh", "examples/shell/agent.sh"]
    env     = { EVERY = "1", MODEL = "gpt-4o-mini", PEER = "researcher" }
    restart_on_isolation = true
    stop_timeout         = "3s"
  }
}

listen { address = "127.0.0.1:17075" }
