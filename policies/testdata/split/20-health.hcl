health {
  heartbeat_interval = "1s"
  notify             = ["ops"]
}
