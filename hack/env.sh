#!/usr/bin/env bash
# hack/env.sh start|stop|status: the lkbuild local development environment.
#
# start (idempotent): installs missing apt packages, builds the pinned tools
# (hack/tools/*) into .cache/bin, starts a distribution registry on
# 127.0.0.1:5000 (storage .cache/registry) and buildkitd (state .cache/buildkit,
# socket .lkbuild/buildkitd.sock, config hack/buildkitd.toml), installs the
# docker-buildx plugin with a `lkbuild` builder (remote driver) on that socket
# and writes .lkbuild/env. Anything already running is left alone.
# stop: stops exactly the processes start started (pid files in .lkbuild/).
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

# pigz: BuildKit's own image (moby/buildkit) has it, and containerd then
# decompresses image layers with unpigz instead of Go's gzip.
APT_PACKAGES=(runc pigz mmdebstrap qemu-system-x86 qemu-system-arm qemu-efi-aarch64 qemu-utils ovmf dosfstools mtools fdisk gdisk xorriso squashfs-tools erofs-utils cpio busybox-static kmod iproute2 ca-certificates curl)

# name of a tools module -> "binary=package" pairs it provides
declare -A TOOLS=(
	[buildkit]="buildkitd=github.com/moby/buildkit/cmd/buildkitd buildctl=github.com/moby/buildkit/cmd/buildctl"
	[registry]="registry=github.com/distribution/distribution/v3/cmd/registry"
	[buildx]="docker-buildx=github.com/docker/buildx/cmd/buildx"
)

ensure_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return
	fi
	log "installing apt packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pinned_version DIR MODULE: the version of MODULE that DIR/go.mod requires.
pinned_version() {
	awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit } $1 == m { print $2; exit }' "$1/go.mod"
}

# ldflags MOD: link flags that stamp the pinned version into the binaries
# (so `docker buildx inspect` and `buildctl debug info` report it).
ldflags() {
	local dir="$ROOT/hack/tools/$1"
	case "$1" in
	buildkit) echo "-s -w -X github.com/moby/buildkit/version.Version=$(pinned_version "$dir" github.com/moby/buildkit)" ;;
	registry) echo "-s -w -X github.com/distribution/distribution/v3/version.version=$(pinned_version "$dir" github.com/distribution/distribution/v3)" ;;
	buildx) echo "-s -w -X github.com/docker/buildx/version.Version=$(pinned_version "$dir" github.com/docker/buildx)" ;;
	esac
}

# build_tools builds each tools module's binaries into .cache/bin when one is
# missing or the module (go.mod, go.sum, tools.go) or its link flags changed.
build_tools() {
	mkdir -p "$BIN_DIR"
	local mod dir stamp want pair bin pkg need flags
	for mod in buildkit registry buildx; do
		dir="$ROOT/hack/tools/$mod"
		stamp="$BIN_DIR/.stamp-$mod"
		flags="$(ldflags "$mod")"
		want="$( (cat "$dir/go.mod" "$dir/go.sum" "$dir/tools.go"; echo "$flags") | sha256sum | cut -d' ' -f1)"
		need=0
		[ "$(cat "$stamp" 2>/dev/null)" = "$want" ] || need=1
		for pair in ${TOOLS[$mod]}; do
			[ -x "$BIN_DIR/${pair%%=*}" ] || need=1
		done
		[ "$need" = 1 ] || continue
		command -v go >/dev/null || die "go is not on PATH (needed to build hack/tools/$mod)"
		for pair in ${TOOLS[$mod]}; do
			bin="${pair%%=*}" pkg="${pair#*=}"
			log "tools: building $bin from hack/tools/$mod (minutes on a cold Go cache)"
			(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$flags" -o "$BIN_DIR/.$bin.tmp" "$pkg")
			mv -f "$BIN_DIR/.$bin.tmp" "$BIN_DIR/$bin"
		done
		echo "$want" >"$stamp"
	done
}

# proc_matches PID BINARY: is PID running BINARY?
proc_matches() {
	local exe
	[ -n "$1" ] && [ -d "/proc/$1" ] || return 1
	exe="$(readlink "/proc/$1/exe" 2>/dev/null || true)"
	exe="${exe% (deleted)}"
	[ "$exe" = "$2" ]
}

# daemon NAME BINARY ARGS...: start BINARY detached, pid in .lkbuild/NAME.pid.
daemon() {
	local name="$1" bin="$2"
	shift 2
	printf '\n==== %s start %s\n' "$name" "$(date -Is)" >>"$STATE/$name.log"
	setsid "$bin" "$@" </dev/null >>"$STATE/$name.log" 2>&1 9>&- &
	echo $! >"$STATE/$name.pid"
}

wait_for() { # seconds description command...
	local n="$1" what="$2" i
	shift 2
	for ((i = 0; i < n * 5; i++)); do
		if "$@"; then return 0; fi
		sleep 0.2
	done
	die "$what did not come up in ${n}s (see $STATE/*.log)"
}

# restart_if_rebuilt NAME BINARY: stop a daemon we started whose binary was
# rebuilt since (its /proc/PID/exe is deleted), so start brings up the new one.
restart_if_rebuilt() {
	local pid exe
	pid="$(cat "$STATE/$1.pid" 2>/dev/null || true)"
	[ -n "$pid" ] || return 0
	exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
	if [ "$exe" = "$2 (deleted)" ]; then
		log "$1: binary was rebuilt: restarting"
		stop_daemon "$1" "$2" 30
	fi
}

start_registry() {
	restart_if_rebuilt registry "$BIN_DIR/registry"
	if registry_up; then
		log "registry: already serving on $REGISTRY_ADDR"
		return
	fi
	local pid
	pid="$(cat "$STATE/registry.pid" 2>/dev/null || true)"
	if proc_matches "$pid" "$BIN_DIR/registry"; then
		die "registry (pid $pid) is running but not answering on $REGISTRY_ADDR (see $STATE/registry.log)"
	fi
	mkdir -p "$CACHE/registry"
	log "registry: starting on $REGISTRY_ADDR (storage .cache/registry)"
	REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$CACHE/registry" OTEL_TRACES_EXPORTER=none \
		daemon registry "$BIN_DIR/registry" serve "$ROOT/hack/registry.yml"
	wait_for 20 registry registry_up
}

start_buildkitd() {
	restart_if_rebuilt buildkitd "$BIN_DIR/buildkitd"
	if buildkitd_up; then
		log "buildkitd: already running on $SOCK"
		return
	fi
	local pid
	pid="$(cat "$STATE/buildkitd.pid" 2>/dev/null || true)"
	if proc_matches "$pid" "$BIN_DIR/buildkitd"; then
		log "buildkitd: pid $pid is starting, waiting"
	else
		[ -x /usr/sbin/runc ] || die "/usr/sbin/runc missing (apt package runc)"
		rm -f "$SOCK"
		mkdir -p "$CACHE/buildkit"
		log "buildkitd: starting (root .cache/buildkit, socket $SOCK)"
		daemon buildkitd "$BIN_DIR/buildkitd" --config "$ROOT/hack/buildkitd.toml" \
			--root "$CACHE/buildkit" --addr "$BUILDKIT_ADDR"
	fi
	wait_for 60 buildkitd buildkitd_up
}

setup_buildx() {
	if ! command -v docker >/dev/null; then
		log "warning: no docker CLI on PATH: skipping the docker-buildx plugin and the lkbuild builder"
		return
	fi
	local plugins="$HOME/.docker/cli-plugins" info
	mkdir -p "$plugins"
	if ! cmp -s "$BIN_DIR/docker-buildx" "$plugins/docker-buildx"; then
		log "buildx: installing $plugins/docker-buildx"
		install -m 0755 "$BIN_DIR/docker-buildx" "$plugins/.docker-buildx.tmp"
		mv -f "$plugins/.docker-buildx.tmp" "$plugins/docker-buildx"
	fi
	info="$(docker buildx inspect lkbuild 2>/dev/null || true)"
	if [ -n "$info" ] && grep -Eq '^Driver: +remote$' <<<"$info" && grep -Eq "^ *Endpoint: +$BUILDKIT_ADDR\$" <<<"$info"; then
		:
	else
		if [ -n "$info" ]; then
			log "buildx: builder lkbuild points elsewhere: recreating it"
			docker buildx rm lkbuild >/dev/null 2>&1 || true
		fi
		log "buildx: creating builder lkbuild (remote driver, $BUILDKIT_ADDR)"
		docker buildx create --name lkbuild --driver remote --use "$BUILDKIT_ADDR" >/dev/null
	fi
	docker buildx inspect lkbuild --bootstrap >/dev/null ||
		die "docker buildx inspect lkbuild --bootstrap failed"
}

write_env() {
	local tmp="$STATE/.env.tmp"
	cat >"$tmp" <<EOF
# Generated by hack/env.sh: \`source .lkbuild/env\` to use the lkbuild dev environment.
export BUILDKIT_HOST='$BUILDKIT_ADDR'
export LKBUILD_REGISTRY='$REGISTRY_ADDR'
export LKBUILD_FRONTEND='$FRONTEND_REF'
export BUILDX_BUILDER=lkbuild
export PATH="$BIN_DIR:\$PATH"
EOF
	mv -f "$tmp" "$STATE/env"
}

report_binfmt() {
	local d=/proc/sys/fs/binfmt_misc found=()
	if [ ! -e "$d/status" ]; then
		log "binfmt_misc: not mounted: no qemu-* interpreters registered (builds run without emulation)"
		return
	fi
	shopt -s nullglob
	for f in "$d"/qemu-*; do found+=("$(basename "$f")"); done
	shopt -u nullglob
	if [ "${#found[@]}" -eq 0 ]; then
		log "binfmt_misc: no qemu-* interpreters registered (builds run without emulation)"
	else
		log "binfmt_misc: WARNING qemu interpreters registered (foreign binaries would run emulated): ${found[*]}"
	fi
}

start() {
	mkdir -p "$STATE" "$CACHE"
	exec 9>"$STATE/env.lock"
	flock 9
	ensure_packages
	build_tools
	start_registry
	start_buildkitd
	setup_buildx
	write_env
	report_binfmt
	log "ready: source .lkbuild/env (BUILDKIT_HOST=$BUILDKIT_ADDR, registry $REGISTRY_ADDR)"
}

# stop_daemon NAME BINARY SECONDS
stop_daemon() {
	local name="$1" bin="$2" secs="$3" pidfile="$STATE/$1.pid" pid i
	[ -f "$pidfile" ] || return 0
	pid="$(cat "$pidfile")"
	if proc_matches "$pid" "$bin"; then
		log "$name: stopping pid $pid"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 5; i++)); do
			proc_matches "$pid" "$bin" || break
			sleep 0.2
		done
		if proc_matches "$pid" "$bin"; then
			log "$name: still running after ${secs}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
		fi
	else
		log "$name: pid $pid is not running $bin: nothing to stop"
	fi
	rm -f "$pidfile"
}

unmount_leftovers() {
	local mnts m
	# mount points under .cache/buildkit, deepest first
	mnts="$(awk -v p="$CACHE/buildkit/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r)"
	for m in $mnts; do
		log "unmounting leftover $m"
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
}

stop() {
	mkdir -p "$STATE"
	exec 9>"$STATE/env.lock"
	flock 9
	stop_daemon buildkitd "$BIN_DIR/buildkitd" 30
	if ! buildkitd_up; then
		rm -f "$SOCK"
		unmount_leftovers
	fi
	stop_daemon registry "$BIN_DIR/registry" 10
}

status() {
	if registry_up; then echo "registry: serving on $REGISTRY_ADDR"; else echo "registry: down"; fi
	if buildkitd_up; then echo "buildkitd: running on $SOCK"; else echo "buildkitd: down"; fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
