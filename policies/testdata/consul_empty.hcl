# Empty strings count as unset, so the environment still applies.
agent {
  name = "writer"
}

consul {
  address = ""
  token   = ""
}
