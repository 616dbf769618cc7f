#!/usr/bin/env bash
# hack/standins/boottest.sh: boot-test the stand-in images without lkbuild.
#
# Assembles an initramfs by hand from the contexts hack/images.sh prepared
# (.cache/images/{init,runc,busybox,kernel}) plus three bundles, boots it in
# qemu (TCG) and checks the stand-in init's console markers:
#   onboot/000-hello    read-only busybox rootfs, prints a line
#   services/echo       writable (tmpfs + overlay from runtime.json, as LinuxKit
#                       lays out writable containers), writes to its rootfs
#   services/zz-poweroff  host pid namespace, runs `poweroff` after 2 s
# Needs: hack/images.sh run first (or at least its prep steps), runc, cpio,
# python3, qemu-system-x86_64. Prints the console log; exits non-zero when a
# marker is missing. KEEP=1 keeps the work directory; APPEND adds kernel
# arguments, QEMU_ARGS qemu options.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/.cache/images"
for d in init runc busybox kernel; do
	[ -d "$IMAGES/$d" ] || { echo "boottest: $IMAGES/$d missing: run hack/images.sh first" >&2; exit 1; }
done

work="$(mktemp -d /tmp/lkinit-boottest.XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"
cp -a "$IMAGES/init/." "$root/"
cp -a "$IMAGES/runc/." "$root/"
tar -xf "$IMAGES/kernel/kernel.tar" -C "$root"
ln -sfn /run/resolvconf/resolv.conf "$root/etc/resolv.conf"

# spec BUNDLE READONLY HOSTPID ARGS...: a config.json for BUNDLE.
spec() {
	local bundle="$1" ro="$2" hostpid="$3"
	shift 3
	runc spec --bundle "$bundle"
	python3 - "$bundle/config.json" "$ro" "$hostpid" "$@" <<'EOF'
import json, sys
path, ro, hostpid, args = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["root"] = {"path": "rootfs", "readonly": ro}
c["hostname"] = "standin"
if hostpid:
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
    for k in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"][k] += ["CAP_SYS_BOOT", "CAP_KILL"]
json.dump(c, open(path, "w"), indent=2)
EOF
}

b="$root/containers/onboot/000-hello"
mkdir -p "$b/rootfs"
cp -a "$IMAGES/busybox/." "$b/rootfs/"
mkdir -p "$b/rootfs"/{dev,proc,sys}
spec "$b" 1 0 /bin/sh -c 'echo "hello from onboot: $(uname -r) $(hostname)"'
cat >"$b/runtime.json" <<'EOF'
{"mounts": [{"destination": "/containers/onboot/000-hello/rootfs", "source": "/containers/onboot/000-hello/rootfs", "options": ["bind"]}]}
EOF

b="$root/containers/services/echo"
mkdir -p "$b/lower" "$b/tmp" "$b/rootfs"
cp -a "$IMAGES/busybox/." "$b/lower/"
mkdir -p "$b/lower"/{dev,proc,sys}
spec "$b" 0 0 /bin/sh -c 'echo written >/written && echo "echo service: $(cat /written)"; sleep 1000'
cat >"$b/runtime.json" <<'EOF'
{
  "mounts": [
    {"destination": "/containers/services/echo/tmp", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/containers/services/echo/tmp", "options": ["remount", "private"]},
    {"destination": "/containers/services/echo/rootfs", "type": "overlay", "source": "overlay",
     "options": ["lowerdir=/containers/services/echo/lower", "upperdir=/containers/services/echo/tmp/upper", "workdir=/containers/services/echo/tmp/work"]}
  ],
  "mkdir": ["/var/lib/echo", "srv"]
}
EOF

b="$root/containers/services/zz-poweroff"
mkdir -p "$b/rootfs"
cp -a "$IMAGES/busybox/." "$b/rootfs/"
mkdir -p "$b/rootfs"/{dev,proc,sys}
spec "$b" 1 1 /bin/sh -c 'sleep 2; echo "poweroff service: powering off"; poweroff'
cat >"$b/runtime.json" <<'EOF'
{"mounts": [{"destination": "/containers/services/zz-poweroff/rootfs", "source": "/containers/services/zz-poweroff/rootfs", "options": ["bind"]}]}
EOF

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1) >"$work/initrd.img"
echo "boottest: initrd $(du -h "$work/initrd.img" | cut -f1), booting (TCG)" >&2
start=$SECONDS
set +e
timeout "${BOOT_TIMEOUT:-240}" qemu-system-x86_64 -m 1024 -smp 1 -nographic -no-reboot \
	-kernel "$IMAGES/kernel/kernel" -initrd "$work/initrd.img" \
	-append "console=ttyS0 panic=-1 ${APPEND:-}" ${QEMU_ARGS:-} </dev/null >"$work/console.log" 2>&1
rc=$?
set -e
tr -d '\r' <"$work/console.log" >"$work/console.txt"
grep -v '^\[' "$work/console.txt" || true
echo "boottest: qemu exited $rc after $((SECONDS - start))s" >&2

fail=0
for want in \
	'lkinit: onboot hello start' \
	'hello from onboot: ' \
	'lkinit: onboot hello exit 0' \
	'lkinit: service echo started' \
	'echo service: written' \
	'lkinit: service zz-poweroff started' \
	'lkinit: all services started' \
	'lkinit: shutdown poweroff' \
	'reboot: Power down'; do
	if ! grep -qF "$want" "$work/console.txt"; then
		echo "boottest: MISSING: $want" >&2
		fail=1
	fi
done
if [ "$rc" != 0 ]; then
	echo "boottest: qemu did not power off by itself (exit $rc)" >&2
	fail=1
fi
[ "$fail" = 0 ] && echo "boottest: PASS" >&2
exit "$fail"
