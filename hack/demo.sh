#!/usr/bin/env bash
# make demo: build examples/minimal.yml into out/ with lkbuild and boot it with
# lkbuild run (qemu, software emulation), showing the serial console until the onboot
# container and the service have printed their lines.
#
# It sets up only what the demo needs: the environment (hack/env.sh start),
# the lkbuild binary, and the amd64 images examples/minimal.yml names
# (kernel, init, runc, busybox and the frontend image, which is the release
# Dockerfile baked for linux/amd64 on its stand-in bases; not the
# built-in-driver kernel or the test images, which make test builds), and
# prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=()
start=$SECONDS
# step NAME CMD...: runs CMD and records how long it took.
step() {
	local name="$1" t0=$SECONDS
	shift
	echo "==> $name"
	"$@"
	steps+=("$(printf '%4ds  %s' $((SECONDS - t0)) "$name")")
}
summary() {
	echo "==> time per step:"
	printf '    %s\n' "${steps[@]}"
	printf '    %4ds  total\n' $((SECONDS - start))
}

step "environment: packages, tools, registry, buildkitd (hack/env.sh start)" hack/env.sh start
step "lkbuild binary (make build)" make -s build
step "images for the demo, amd64 (hack/images.sh kernel init runc busybox lkbuild: the release image, baked)" \
	env LKBUILD_ARCHES=amd64 hack/images.sh kernel init runc busybox lkbuild
# shellcheck disable=SC1091
source .lkbuild/env
step "lkbuild build -f examples/minimal.yml --target kernel+initrd -o out/" \
	bin/lkbuild build -f examples/minimal.yml --target kernel+initrd -o out/ --progress plain
echo "==> built: $(cd out && echo minimal-*)"
boot_start=$SECONDS

log=out/minimal-console.log
markers=("lkbuild-demo: hello from onboot" "lkbuild-demo: httpd service up")
: >"$log"
echo "==> lkbuild run --accel tcg out/ (kernel+initrd in qemu, TCG); console follows"
bin/lkbuild run --accel tcg --timeout 300s out/ </dev/null >"$log" 2>&1 &
qemu=$!
tail -f "$log" --pid "$qemu" &
tailer=$!
cleanup() { kill "$qemu" "$tailer" 2>/dev/null || true; }
trap cleanup EXIT

deadline=$(($(date +%s) + 300))
while :; do
	ok=1
	for m in "${markers[@]}"; do grep -q "$m" "$log" || ok=0; done
	if [ "$ok" = 1 ]; then
		sleep 1
		echo
		echo "==> demo OK: the onboot container and the httpd service printed on the console (log: $log)"
		steps+=("$(printf '%4ds  %s' $((SECONDS - boot_start)) "boot in qemu to the service marker")")
		summary
		exit 0
	fi
	if ! kill -0 "$qemu" 2>/dev/null; then
		echo "==> demo FAILED: lkbuild run stopped before the markers appeared (log: $log)" >&2
		exit 1
	fi
	if [ "$(date +%s)" -gt "$deadline" ]; then
		echo "==> demo FAILED: markers not seen within 300s (log: $log)" >&2
		exit 1
	fi
	sleep 1
done
