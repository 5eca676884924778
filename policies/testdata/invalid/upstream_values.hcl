agent {
  name = "writer"
}

breaker "slow" {}

upstream "researcher" {
  breaker  = "fast"
  timeout  = "0s"
  retries  = -1
  fallback = ["researcher-lit", "researcher-lite", "researcher-lite"]
  balance  = "random"
}

upstream "researcher-lite" {
  service = "researcher-lite"
  url     = "http://127.0.0.1:9200"
}

upstream "static" {
  url    = "ftp://files.example.com"
  tags   = ["gpu"]
  filter = "Service.Meta.tier == \"lite\""
}

upstream "query" {
  url = "http://127.0.0.1:9200/api?key=1"
}

upstream "bad_label" {}
