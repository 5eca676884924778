agent {
  name = "writer"
}

upstream "researcher" {
  fallback = ["researcher-lite"]
}

upstream "researcher-lite" {
  fallback = ["researcher"]
}

upstream "loop" {
  fallback = ["loop"]
}

upstream "a" {
  fallback = ["b"]
}

upstream "b" {
  fallback = ["c"]
}

upstream "c" {
  fallback = ["b", "researcher"]
}
