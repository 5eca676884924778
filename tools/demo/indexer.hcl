# indexer: the shell example agent (examples/shell), a batch job that
# reports with `sidecar heartbeat` after each round. In phase 4 of the demo
# its batch job runs away (the demo plays it) and its budget stops it.
agent {
  name      = "indexer"
  id        = "indexer-1"
  tags      = ["shell", "demo"]
  state_dir = env("DEMO_STATE_DIR")   # the budget's spend; the demo gives each run its own
  exec {
    command = ["sh", "examples/shell/agent.sh"]
    env     = { EVERY = "1", MODEL = "gpt-4o-mini", PEER = "researcher" }
    restart_on_isolation = true
    stop_timeout         = "3s"
  }
}

listen { address = "127.0.0.1:17075" }

# What the indexer may spend on models: 3000 tokens a minute (a short window,
# for the demo; "24h" in earnest). At 50 % operations get budget.warning; once
# spent, every model call is answered 429 until the window resets, and
# operations get budget.exceeded.
budget "indexer-tokens" {
  window  = "1m"
  tokens  = 3000
  action  = "reject"
  warn_at = 50
}
