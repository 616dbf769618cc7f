# Shared helpers for hack/env.sh and hack/images.sh (sourced, not executed).
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
BIN_DIR="$CACHE/bin"
STATE="$ROOT/.lkbuild"
REGISTRY_ADDR="127.0.0.1:5000"
SOCK="$STATE/buildkitd.sock"
BUILDKIT_ADDR="unix://$SOCK"
FRONTEND_REF="$REGISTRY_ADDR/lkbuild/lkbuild:v0.1"

# The Go toolchain lives in /usr/local/go on these machines.
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) [ -d /usr/local/go/bin ] && PATH="$PATH:/usr/local/go/bin" ;; esac
PATH="$BIN_DIR:$PATH"
export PATH

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }


registry_up() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

buildkitd_up() {
	[ -S "$SOCK" ] && "$BIN_DIR/buildctl" --addr "$BUILDKIT_ADDR" debug workers >/dev/null 2>&1
}

# manifest_exists REPO TAG: is REPO:TAG in the local registry?
manifest_exists() {
	curl -fsS -o /dev/null --max-time 5 \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REGISTRY_ADDR/v2/$1/manifests/$2" 2>/dev/null
}
