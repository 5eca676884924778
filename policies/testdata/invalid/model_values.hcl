agent {
  name = "writer"
}

model "gpt-4o" {
  provider            = "OpenAI"
  base_url            = "ftp://llm.example.com/v1"
  name                = "gpt 4o"
  breaker             = "fast"
  timeout             = "0s"
  first_byte_timeout  = "1x"
  stream_idle_timeout = "-1s"
  max_tokens          = -1
  drop_fields         = ["tools", "", "tools", "messages", "model", "stream"]
  degrade_on          = ["empty", "invalid-json", "empty"]
  headers = {
    "Bad Header"   = "x"
    Host           = "llm.example.com"
    Content-Length = "10"
  }
}

model "gpt-4o-mini" {
  provider = "openai"
  base_url = "https://llm.example.com/v1?key=1"
  name     = ""
  fallback = ""
}

model "claude" {
  provider = "anthropic"
  base_url = "https://api.anthropic.com/v1/"
}

model "mistral" {
  provider = "mistral"
  base_url = ""
}

model "no-provider" {}

model "slow" {
  provider           = "openai"
  timeout            = "1m"
  first_byte_timeout = "90s"
}

model "short" {
  provider = "openai"
  timeout  = "10s"
}

gateway {
  max_request_bytes = 512
}
