agent { name = "writer" }

consul {
  fleet_prefix = "/sidecar/fleet/"
}
