# Sourced by the scripts that build a program into the project's cache
# (consul.sh, jaeger.sh); not run on its own.
#
#   cached_build NAME VERSION WHAT DURATION
#
# sets bin to where NAME VERSION is cached
# ($SIDECAR_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/agent-sidecar,
# then NAME-VERSION/NAME, where internal/testbin looks for it). When that
# binary is there and runs, prints its path and ends the script. Otherwise
# says it builds WHAT (taking DURATION), creates bin's directory and sets
# work to a temporary directory removed when the script exits.
cached_build() {
  local name="$1" version="$2" what="$3" duration="$4"
  local cache_root="${SIDECAR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-sidecar}"
  bin="$cache_root/$name-$version/$name"

  if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
    echo "$bin"
    exit 0
  fi

  echo "building $what $version into $bin (first time only, $duration)" >&2
  mkdir -p "$(dirname "$bin")"
  work="$(mktemp -d)"
  trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
}
