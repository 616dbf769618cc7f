#!/usr/bin/env bash
# Record the trees `linuxkit build --format tar` makes from the parity corpus
# (see README.md next to this script).
#
#   hack/parity/record.sh LINUXKIT_SRC [record flags...]
#
# LINUXKIT_SRC is a LinuxKit checkout (or an extracted archive of one, with
# src/cmd/linuxkit). Its git commit is taken from LINUXKIT_COMMIT, else from
# `git -C LINUXKIT_SRC rev-parse HEAD`. The linuxkit binary is built once per
# commit into ${LKBUILD_PARITY_CACHE:-~/.cache/lkbuild/parity}/bin (module mode:
# the vendor directory of a partial checkout is incomplete). Extra flags go to
# the Go recorder (e.g. -run 'examples__sshd' -keep).
set -euo pipefail

src=${1:?usage: $0 LINUXKIT_SRC [record flags...]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${LKBUILD_PARITY_CACHE:-$HOME/.cache/lkbuild/parity}
commit=${LINUXKIT_COMMIT:-$(git -C "$src" rev-parse HEAD 2>/dev/null || true)}
if [[ ! $commit =~ ^[0-9a-f]{40}$ ]]; then
	echo "record.sh: no commit for $src: set LINUXKIT_COMMIT" >&2
	exit 1
fi
command -v unshare >/dev/null || { echo "record.sh: needs unshare (util-linux)" >&2; exit 1; }

bin=$cache/bin/linuxkit-$commit
if [[ ! -x $bin ]]; then
	mkdir -p "$cache/bin"
	echo "building linuxkit $commit into $bin" >&2
	(cd "$src/src/cmd/linuxkit" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$bin.tmp" .)
	mv "$bin.tmp" "$bin"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lkparity.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$root"
go run ./hack/parity/record -linuxkit "$bin" -commit "$commit" \
	-root . -out hack/parity/testdata -work "$work" "$@"
