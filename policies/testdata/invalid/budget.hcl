agent { name = "writer" }
model "gpt-4o" { provider = "openai" }
model "gpt-4o-mini" { provider = "openai" }
budget "odd-window" {
  window = "7m"
  tokens = 1000
}
budget "no-limit" {
  window = "1h"
}
budget "degrade-nowhere" {
  cost_usd = 5
  action   = "degrade"
}
budget "bad-values" {
  cost_usd   = -1
  tokens     = 0
  action     = "block"
  warn_at    = 120
  models     = ["gpt-4o", "gpt-4", "gpt-4o"]
}
budget "stray-degrade" {
  tokens     = 10
  degrade_to = "gpt-4o-mini"
}
budget "unknown-target" {
  tokens     = 10
  action     = "degrade"
  degrade_to = "gpt-40-mini"
}
