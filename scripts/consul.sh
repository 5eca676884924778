#!/usr/bin/env bash
# Builds Consul from the Go module proxy and caches the binary outside the
# checkout. Prints the binary's path. Rebuilds only when the binary is missing.
#
#   scripts/consul.sh            # build if missing, print path
#   CONSUL_VERSION=v1.14.11      # the version to build (default)
#   SIDECAR_CACHE_DIR=...        # where to cache (default: user cache dir)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version="${CONSUL_VERSION:-v1.14.11}"
cached_build consul "$version" Consul "a few minutes" # sets bin and work

moddir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/consul@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$moddir" || ! -d "$moddir" ]]; then
  echo "consul.sh: could not download github.com/hashicorp/consul@$version from the Go module proxy" >&2
  exit 1
fi

cp -r "$moddir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
go mod edit \
  -dropreplace=github.com/hashicorp/consul/api \
  -dropreplace=github.com/hashicorp/consul/sdk \
  -dropreplace=github.com/hashicorp/consul/proto-public
GOFLAGS=-mod=mod go mod tidy >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
"$bin" version >&2
echo "$bin"
