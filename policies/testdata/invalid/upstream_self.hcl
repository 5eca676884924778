agent {
  name = "writer"
  port = 8081
}

listen {
  address = "127.0.0.1:7070"
}

ingress {
  address = "0.0.0.0:7080"
}

upstream "me" {
  url = "http://localhost:7070/call/me"
}

upstream "tasks" {
  url = "http://127.0.0.1:7080"
}

upstream "v6" {
  url = "http://[::1]:7080/x"
}

upstream "elsewhere" {
  url = "http://127.0.0.1:7071"
}

upstream "remote" {
  url = "https://tools.example.com:7070"
}
