#!/usr/bin/env bash
# hack/kernel.sh OUT_DIR: build the stand-in "builtin" kernel (bzImage) from
# Debian's linux-source-6.1 package and copy it to OUT_DIR/kernel.
#
# Debian's own kernels build the CD-ROM, ATA, virtio and filesystem drivers as
# modules. The formats whose root filesystem lives on the medium (iso-bios and
# iso-efi boot with root=/dev/sr0 and no initrd) need them built in, as
# LinuxKit's kernels have them; this kernel exists to boot-test those
# formats. It is x86_64_defconfig plus qemu guest support and the options
# below, all built in (no modules).
#
# The result is cached outside the checkout, in
# ${LKBUILD_KERNEL_CACHE:-$HOME/.cache/lkbuild/kernel}/<key>/, keyed by the
# source package and the configuration options: a cold build takes about 9 minutes on
# 2 cores, a cached one nothing.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

OUT="${1:?OUT_DIR}"
KCACHE="${LKBUILD_KERNEL_CACHE:-$HOME/.cache/lkbuild/kernel}"
DEBS_DIR="$CACHE/debs"
BUILD_PACKAGES=(gcc make flex bison bc libelf-dev libssl-dev xz-utils cpio)

# Options set on top of x86_64_defconfig and kvm_guest.config.
ENABLE=(
	# root on the medium: ISO 9660 on a SATA/IDE CD-ROM, and the disk drivers
	BLK_DEV_SR ISO9660_FS JOLIET ZISOFS ATA ATA_PIIX SATA_AHCI ATA_SFF ATA_BMDMA
	VIRTIO VIRTIO_PCI VIRTIO_BLK VIRTIO_NET VIRTIO_CONSOLE SCSI_VIRTIO HW_RANDOM_VIRTIO
	# root filesystem images and the runtime's filesystems
	SQUASHFS SQUASHFS_XZ SQUASHFS_ZSTD SQUASHFS_XATTR EROFS_FS EROFS_FS_XATTR OVERLAY_FS
	BLK_DEV_LOOP MSDOS_FS VFAT_FS FAT_DEFAULT_UTF8 NLS_CODEPAGE_437 NLS_ISO8859_1 NLS_UTF8 EXT4_FS TMPFS
	# what runc and the containers use
	NAMESPACES USER_NS PID_NS NET_NS UTS_NS IPC_NS CGROUPS MEMCG CGROUP_PIDS CGROUP_DEVICE CGROUP_FREEZER
	CGROUP_SCHED CPUSETS CGROUP_BPF BPF_SYSCALL VETH BRIDGE TUN SECCOMP SECCOMP_FILTER POSIX_MQUEUE KEYS
	# EFI boot (the EFI stub, for the UKI and EFI ISOs)
	EFI EFI_STUB
	# serial console
	SERIAL_8250 SERIAL_8250_CONSOLE
)
DISABLE=(
	# slow to build and useless in a qemu guest
	DRM SOUND USB_SUPPORT WLAN WIRELESS CFG80211 MAC80211 BT NFS_FS NETWORK_FILESYSTEMS HID
	INPUT_JOYSTICK INPUT_TABLET INPUT_TOUCHSCREEN MEDIA_SUPPORT AGP FB
	MODULES MODULE_SIG SYSTEM_TRUSTED_KEYRING DEBUG_INFO DEBUG_INFO_BTF
)

main() {
	local deb key dir src jobs
	deb="$(find "$DEBS_DIR" -maxdepth 1 -name 'linux-source-6.1_*_all.deb' 2>/dev/null | sort -V | tail -1)"
	if [ -z "$deb" ]; then
		mkdir -p "$DEBS_DIR"
		log "kernel: downloading linux-source-6.1"
		(cd "$DEBS_DIR" && apt-get -qq -o APT::Sandbox::User=root download linux-source-6.1 >&2) ||
			(apt-get update -qq >&2 && cd "$DEBS_DIR" && apt-get -qq -o APT::Sandbox::User=root download linux-source-6.1 >&2)
		deb="$(find "$DEBS_DIR" -maxdepth 1 -name 'linux-source-6.1_*_all.deb' | sort -V | tail -1)"
	fi
	[ -n "$deb" ] || die "cannot download linux-source-6.1"
	# The key covers the source and the configuration, not this script's comments.
	key="$(basename "$deb" .deb)-$(printf '%s\n' "${ENABLE[@]}" -- "${DISABLE[@]}" | sha256sum | cut -c1-12)"
	dir="$KCACHE/$key"
	if [ ! -f "$dir/bzImage" ]; then
		ensure_build_packages
		rm -rf "$dir.work"
		mkdir -p "$dir.work"
		log "kernel: building $key (about 9 minutes on 2 cores; cached afterwards in $KCACHE)"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.work" ./usr/src/linux-source-6.1.tar.xz
		tar -xJf "$dir.work/usr/src/linux-source-6.1.tar.xz" -C "$dir.work"
		src="$dir.work/linux-source-6.1"
		jobs="$(nproc)"
		(
			cd "$src"
			export KBUILD_BUILD_TIMESTAMP="@0" KBUILD_BUILD_USER=lkbuild KBUILD_BUILD_HOST=lkbuild
			make -s x86_64_defconfig kvm_guest.config
			for o in "${ENABLE[@]}"; do scripts/config --enable "$o"; done
			for o in "${DISABLE[@]}"; do scripts/config --disable "$o"; done
			scripts/config --set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS ""
			make -s olddefconfig
			for o in BLK_DEV_SR ISO9660_FS ATA_PIIX SQUASHFS EROFS_FS OVERLAY_FS VIRTIO_BLK EFI_STUB CGROUP_BPF; do
				grep -qx "CONFIG_$o=y" .config || die "CONFIG_$o is not built in after olddefconfig"
			done
			make -s -j"$jobs" bzImage >&2
		)
		mkdir -p "$dir"
		install -m 0644 "$src/arch/x86/boot/bzImage" "$dir/bzImage"
		install -m 0644 "$src/.config" "$dir/config"
		rm -rf "$dir.work"
		log "kernel: built $dir/bzImage ($(du -h "$dir/bzImage" | cut -f1))"
	fi
	mkdir -p "$OUT"
	install -m 0644 "$dir/bzImage" "$OUT/kernel"
}

ensure_build_packages() {
	local missing=() p
	for p in "${BUILD_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return
	log "kernel: installing build packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

main "$@"
