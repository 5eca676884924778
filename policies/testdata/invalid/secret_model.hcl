agent {
  name = "writer"
}

model "wrong-types" {
  provider = "openai"
  api_key  = ["sk-list-s3cret"]
  headers = {
    X-Token = ["hdr-list-s3cret"]
  }
}

model "userinfo" {
  provider = "openai"
  base_url = "https://key-user:key-s3cret@llm.example.com/v1"
}

model "query" {
  provider = "anthropic"
  base_url = "https://llm.example.com/v1?key=query-s3cret#frag-s3cret"
}

model "scheme" {
  provider = "openai"
  base_url = "ftp://ftp-user:ftp-s3cret@llm.example.com/?k=ftp-query"
}

model "anthropic-v1" {
  provider = "anthropic"
  base_url = "https://llm.example.com/v1/"
}

model "line-breaks" {
  provider = "openai"
  api_key  = env("SIDECAR_TEST_MODEL_KEY")
  headers = {
    X-Token = env("SIDECAR_TEST_GATEWAY_TOKEN")
  }
}
