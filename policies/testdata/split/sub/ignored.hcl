# Load does not recurse into subdirectories: were this file read, the
# duplicate agent block would fail the load.
agent {
  name = "ignored"
}
