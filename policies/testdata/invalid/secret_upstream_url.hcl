agent {
  name = "writer"
}

upstream "userinfo" {
  url = "https://up-user:up-s3cret@tools.example.com/api"
}

upstream "query" {
  url = "https://tools.example.com/api?token=query-s3cret#frag-s3cret"
}

upstream "scheme" {
  url = "ftp://ftp-user:ftp-s3cret@files.example.com/?k=ftp-query"
}
