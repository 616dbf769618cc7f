#!/usr/bin/env bash
# make demo: build examples/minimal.yml into out/ with lkbuild and boot it with
# lkbuild run (qemu, software emulation), showing the serial console until the onboot
# container and the service have printed their lines.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .lkbuild/env

echo "==> lkbuild build -f examples/minimal.yml --target kernel+initrd -o out/"
SECONDS=0
bin/lkbuild build -f examples/minimal.yml --target kernel+initrd -o out/ --progress plain
echo "==> built in ${SECONDS}s: $(cd out && echo minimal-*)"

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
