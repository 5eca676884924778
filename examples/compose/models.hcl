# The models of both compose variants (loaded beside sidecar.hcl or
# sidecar-exec.hcl: the sidecar loads every *.hcl in /etc/sidecar). Here the
# fake gpt-4o and gpt-4o-mini of the service "models"; for OpenAI itself,
# set base_url = "https://api.openai.com/v1" and export OPENAI_API_KEY (the
# sidecar adds it; the agent never sees it).

model "gpt-4o" {
  provider = "openai"
  base_url = "http://models:9201/v1"
  api_key  = env("OPENAI_API_KEY")
  fallback = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider   = "openai"
  base_url   = "http://models:9202/v1"
  api_key    = env("OPENAI_API_KEY")
  max_tokens = 1024
}
