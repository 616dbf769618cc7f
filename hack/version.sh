#!/usr/bin/env bash
# hack/version.sh version|revision|ldflags: lkbuild's version and commit as
# the binary and the frontend image's labels carry them (internal/version).
# The Go toolchain does not stamp them itself in a git worktree or with
# -buildvcs=false, nor in a container build without .git, so builds pass
# them with -ldflags -X.
#   version   the tag (git describe, v*) or a Go pseudo-version
#             v0.0.0-<commit time UTC>-<12 hex>; +dirty when the tree has changes
#   revision  the commit's full hash; -dirty when the tree has changes
#   ldflags   the -X flags setting both
set -euo pipefail
cd "$(dirname "$0")/.."

dirty=""
if ! git diff --quiet HEAD -- 2>/dev/null; then
	dirty=1
fi
revision() {
	local rev
	rev="$(git rev-parse HEAD 2>/dev/null)" || { echo unknown; return; }
	echo "$rev${dirty:+-dirty}"
}
version() {
	local v
	if v="$(git describe --tags --match 'v*' --dirty=+dirty 2>/dev/null)"; then
		echo "$v"
		return
	fi
	v="$(TZ=UTC git log -1 --format='%cd-%H' --date='format-local:%Y%m%d%H%M%S' 2>/dev/null)" || { echo "(devel)"; return; }
	echo "v0.0.0-${v:0:27}${dirty:++dirty}"
}

case "${1:-}" in
version) version ;;
revision) revision ;;
ldflags)
	pkg=github.com/lkbuild/lkbuild/internal/version
	echo "-X $pkg.version=$(version) -X $pkg.revision=$(revision)"
	;;
*)
	echo "usage: $0 version|revision|ldflags" >&2
	exit 2
	;;
esac
