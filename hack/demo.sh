#!/usr/bin/env bash
# make demo: build examples/minimal.yml into out/ with lkbuild and boot it in
# qemu (software emulation), showing the serial console until the onboot
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
echo "==> booting out/minimal-kernel + out/minimal-initrd.img in qemu (TCG); console follows"
qemu-system-x86_64 -machine q35 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
	-serial mon:stdio -kernel out/minimal-kernel -initrd out/minimal-initrd.img \
	-append "$(cat out/minimal-cmdline) console=ttyS0 panic=-1" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 </dev/null >"$log" 2>&1 &
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
		echo "==> demo FAILED: qemu stopped before the markers appeared (log: $log)" >&2
		exit 1
	fi
	if [ "$(date +%s)" -gt "$deadline" ]; then
		echo "==> demo FAILED: markers not seen within 300s (log: $log)" >&2
		exit 1
	fi
	sleep 1
done
