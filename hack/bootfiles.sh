#!/bin/sh
# hack/bootfiles.sh ROOT OUT: lay out the bootloader files the lkbuild
# frontend image carries for `lkbuild mkimage`, from Debian packages
# installed (or dpkg -x'ed) under ROOT, into OUT/<arch>/.
#
# Packages: grub-pc-bin and grub-common (BIOS disks: boot.img and a core.img
# made here with grub-mkimage), isolinux and syslinux-common (BIOS ISOs),
# systemd-boot-efi for amd64 and for arm64 (EFI: systemd-boot and the stub
# of unified kernel images; both unpack side by side, their files are named
# per architecture). The Dockerfile unpacks the packages (dpkg -x) into ROOT
# rather than install them.
set -eu
ROOT="${1:?ROOT}"
OUT="${2:?OUT}"

# GRUB modules built into the BIOS core.img: enough to read an MBR disk's
# FAT partition and boot Linux from /boot/grub/grub.cfg on it.
GRUB_PC_MODULES="biosdisk part_msdos fat normal linux configfile echo test boot"

amd64="$OUT/amd64"
mkdir -p "$amd64" "$OUT/licenses"
grubdir="$ROOT/usr/lib/grub/i386-pc"
mkimage="$ROOT/usr/bin/grub-mkimage"
[ -x "$mkimage" ] || mkimage=grub-mkimage
install -m 0644 "$grubdir/boot.img" "$amd64/grub-boot.img"
# shellcheck disable=SC2086
"$mkimage" -O i386-pc -d "$grubdir" -o "$amd64/grub-core.img" -p '(hd0,msdos1)/boot/grub' $GRUB_PC_MODULES
install -m 0644 "$ROOT/usr/lib/ISOLINUX/isolinux.bin" "$amd64/isolinux.bin"
install -m 0644 "$ROOT/usr/lib/ISOLINUX/isohdpfx.bin" "$amd64/isohdpfx.bin"
install -m 0644 "$ROOT/usr/lib/syslinux/modules/bios/ldlinux.c32" "$amd64/ldlinux.c32"
install -m 0644 "$ROOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$amd64/systemd-boot.efi"
install -m 0644 "$ROOT/usr/lib/systemd/boot/efi/linuxx64.efi.stub" "$amd64/linux.efi.stub"

# arm64's files are left out when its package was not unpacked.
if [ -f "$ROOT/usr/lib/systemd/boot/efi/systemd-bootaa64.efi" ]; then
	arm64="$OUT/arm64"
	mkdir -p "$arm64"
	install -m 0644 "$ROOT/usr/lib/systemd/boot/efi/systemd-bootaa64.efi" "$arm64/systemd-boot.efi"
	install -m 0644 "$ROOT/usr/lib/systemd/boot/efi/linuxaa64.efi.stub" "$arm64/linux.efi.stub"
fi

for p in grub-pc-bin grub-common isolinux syslinux-common systemd-boot-efi; do
	install -m 0644 "$ROOT/usr/share/doc/$p/copyright" "$OUT/licenses/$p.copyright"
done
find "$OUT" -type d -exec chmod 0755 {} +
