package llbgen

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lkbuild/lkbuild/spec"
)

// Target is an output format selectable with --target.
type Target struct {
	Name        string
	Description string
	// Rootfs targets return the root filesystem itself; the others run
	// `lkbuild mkimage --format <Name>` over it.
	Rootfs bool
	// Disk targets write a disk image, sized by Options.Size.
	Disk bool
	// Arches lists the only architectures (GOARCH names) the target exists
	// for; empty means every architecture.
	Arches []string
	// Boots marks the targets that boot the kernel of the kernel section:
	// without one they fail before anything is fetched. The others write
	// what they can without it, as LinuxKit (see docs/formats.md).
	Boots bool
}

// bios marks the targets that boot through a PC BIOS, which only amd64 has.
var bios = []string{"amd64"}

// Supports reports, as an error naming the alternatives, whether the
// target exists for architecture arch.
func (t Target) Supports(arch string) error {
	if len(t.Arches) == 0 {
		return nil
	}
	for _, a := range t.Arches {
		if a == arch {
			return nil
		}
	}
	return fmt.Errorf("target %s does not exist for %s: it boots through a PC BIOS, which only %s has (for %s use an EFI target: raw-efi, qcow2-efi, iso-efi, iso-efi-initrd or uki)",
		t.Name, arch, strings.Join(t.Arches, ", "), arch)
}

// CheckKernel returns, as a spec.Error at the kernel section or, when the
// YAML has none, at the start of the first file, why t cannot be built
// from cfg: t boots a kernel and cfg names no kernel image. Targets that
// do not boot are always buildable.
func (t Target) CheckKernel(cfg *spec.Config) error {
	if !t.Boots || cfg.Kernel.Image != "" {
		return nil
	}
	var without []string
	for _, o := range Targets() {
		if !o.Boots {
			without = append(without, o.Name)
		}
	}
	msg := fmt.Sprintf("target %s boots a kernel, so it needs kernel.image (targets that build without a kernel: %s)", t.Name, strings.Join(without, ", "))
	if p := cfg.Kernel.Pos; p.Line > 0 {
		return &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel.image", Msg: "missing: " + msg}
	}
	p := cfg.Pos
	return &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel", Msg: "the YAML has no kernel section: " + msg}
}

// DefaultTarget is built when no --target is given, as LinuxKit's default.
const DefaultTarget = "kernel+initrd"

var targets = []Target{
	{Name: "kernel+initrd", Description: "kernel, gzip cpio initrd and cmdline (<name>-kernel, <name>-initrd.img, <name>-cmdline)"},
	{Name: "tar-kernel-initrd", Description: "<name>-initrd.tar holding kernel, initrd.img, cmdline and ucode.cpio"},
	{Name: "tar", Description: "the root filesystem tree (use -o type=tar for LinuxKit's tar output)", Rootfs: true},
	{Name: "docker", Description: "the root filesystem tree with a Dockerfile (FROM scratch, ENTRYPOINT /bin/rc.init), for docker import/build", Rootfs: true},
	{Name: "uki", Description: "<name>.efi: a unified kernel image (systemd EFI stub + kernel + initrd + cmdline), bootable by UEFI firmware", Boots: true},
	{Name: "kernel+iso", Description: "<name>-kernel, <name>-cmdline and <name>.iso, an ISO 9660 (Rock Ridge) image of the root filesystem"},
	{Name: "kernel+squashfs", Description: "<name>-kernel, <name>-cmdline and <name>-squashfs.img, a SquashFS (zlib) image of the root filesystem"},
	{Name: "kernel+erofs", Description: "<name>-kernel, <name>-cmdline and <name>-erofs.img, an uncompressed EROFS image of the root filesystem"},
	{Name: "iso-bios", Description: "<name>.iso: bootable ISO (ISOLINUX, BIOS) holding the root filesystem, mounted from the CD as root", Arches: bios, Boots: true},
	{Name: "iso-efi", Description: "<name>-efi.iso: bootable ISO (EFI, unified kernel image) holding the root filesystem, mounted from the CD as root", Boots: true},
	{Name: "iso-efi-initrd", Description: "<name>-efi-initrd.iso: bootable ISO (EFI) whose unified kernel image carries the initrd", Boots: true},
	{Name: "raw-efi", Description: "<name>-efi.img: GPT disk, EFI System Partition with systemd-boot and a unified kernel image", Disk: true, Boots: true},
	{Name: "qcow2-efi", Description: "<name>-efi.qcow2: the raw-efi disk as qcow2", Disk: true, Boots: true},
	{Name: "raw-bios", Description: "<name>-bios.img: MBR disk, FAT32 partition with kernel and initrd, GRUB for BIOS", Disk: true, Arches: bios, Boots: true},
	{Name: "qcow2-bios", Description: "<name>.qcow2: the raw-bios disk as qcow2", Disk: true, Arches: bios, Boots: true},
	{Name: "vhd", Description: "<name>.vhd: the raw-bios disk as a fixed VHD (Azure, Hyper-V)", Disk: true, Arches: bios, Boots: true},
	{Name: "dynamic-vhd", Description: "<name>.vhd: the raw-bios disk as a dynamic VHD", Disk: true, Arches: bios, Boots: true},
	{Name: "vmdk", Description: "<name>.vmdk: the raw-bios disk as a stream-optimized VMDK (VMware)", Disk: true, Arches: bios, Boots: true},
	{Name: "gcp", Description: "<name>.img.tar.gz: the raw-bios disk as disk.raw in a gzip tar, for Google Compute Engine", Disk: true, Arches: bios, Boots: true},
	{Name: "aws", Description: "<name>.raw: the raw-bios disk, for AWS EC2 import", Disk: true, Arches: bios, Boots: true},
}

// Targets lists every target, sorted by name.
func Targets() []Target {
	out := append([]Target(nil), targets...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupTarget finds a target by name.
func LookupTarget(name string) (Target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}
