agent {
  name = "writer"
  exec = { command = ["python3", "agent.py"] }
}
