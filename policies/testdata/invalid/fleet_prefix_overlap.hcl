agent { name = "writer" }

consul {
  policy_prefix = "sidecar/"
  fleet_prefix  = "sidecar/fleet/"
}
