#!/usr/bin/env bash
# Builds Jaeger (v2, the single `jaeger` binary: OTLP receivers, storage and
# the query API in one process) from the Go module proxy and caches the
# binary outside the checkout. Prints the binary's path. Rebuilds only when
# the binary is missing. The first build takes about 15 minutes on two cores
# (some 2,300 packages, 16 minutes measured with the modules already
# downloaded); a cached one returns at once.
#
# A build from the module proxy serves the query API and a placeholder page:
# Jaeger's web UI is a separate project (jaeger-ui) built with Node.js and
# embedded only in Jaeger's release binaries and images. See
# docs/development.md for pointing the query service at built UI assets.
#
#   scripts/jaeger.sh            # build if missing, print path
#   JAEGER_BIN=...               # use this binary instead (printed as is)
#   JAEGER_VERSION=v1.76.0       # the version to build (default)
#   SIDECAR_CACHE_DIR=...        # where to cache (default: user cache dir)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -n "${JAEGER_BIN:-}" ]]; then
  if [[ ! -x "$JAEGER_BIN" ]]; then
    echo "jaeger.sh: JAEGER_BIN=$JAEGER_BIN is not an executable file" >&2
    exit 1
  fi
  echo "$JAEGER_BIN"
  exit 0
fi

version="${JAEGER_VERSION:-v1.76.0}"
cached_build jaeger "$version" Jaeger "about 15 minutes" # sets bin and work

cd "$work"
go mod init jaeger-build >/dev/null 2>&1
# `go get -tool` resolves the dependencies as Jaeger's go.mod requires
# them; its replace directives (a pinned Kafka client) apply only inside
# Jaeger's own module, so they are copied here to build what Jaeger ships.
GOFLAGS=-mod=mod go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$version" >&2
moddir="$(GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/jaegertracing/jaeger)"
if [[ -z "$moddir" || ! -f "$moddir/go.mod" ]]; then
  echo "jaeger.sh: could not download github.com/jaegertracing/jaeger@$version from the Go module proxy" >&2
  exit 1
fi
awk '/^replace \(/ { block = 1; next } block && /^\)/ { block = 0; next }
  /^replace / { sub(/^replace /, ""); print; next } block { print }' "$moddir/go.mod" |
  while read -r old_path old_or_arrow rest; do
    [[ "$old_or_arrow" == "=>" ]] || rest="${rest#=> }"
    read -r new_path new_version <<<"$rest"
    if [[ -n "$new_version" ]]; then # a local directory cannot be replaced here
      go mod edit -replace "$old_path=$new_path@$new_version"
    fi
  done
GOFLAGS=-mod=mod go mod tidy >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$version" \
  -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2
mv "$bin.tmp" "$bin"
"$bin" version >&2 || true
echo "$bin"
