package llbgen

import (
	"errors"
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
	// Artifact is the name, after <name>, of the file that is the
	// target's own (mkimage targets only). Two targets with the same
	// artifact write different files under one name, so they cannot be
	// built together. The kernel and command line written beside it
	// (<name>-kernel, <name>-cmdline) are the same for every target.
	Artifact string
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
	return checkKernel([]Target{t}, cfg)
}

// checkKernel is CheckKernel for several targets: one error naming every
// target in ts that boots a kernel, when cfg names none.
func checkKernel(ts []Target, cfg *spec.Config) error {
	if cfg.Kernel.Image != "" {
		return nil
	}
	var boots []string
	for _, t := range ts {
		if t.Boots {
			boots = append(boots, t.Name)
		}
	}
	if len(boots) == 0 {
		return nil
	}
	var without []string
	for _, o := range Targets() {
		if !o.Boots {
			without = append(without, o.Name)
		}
	}
	what := "target " + boots[0] + " boots"
	if len(boots) > 1 {
		what = "targets " + strings.Join(boots, ", ") + " boot"
	}
	msg := fmt.Sprintf("%s a kernel, so it needs kernel.image (targets that build without a kernel: %s)", what, strings.Join(without, ", "))
	if p := cfg.Kernel.Pos; p.Line > 0 {
		return &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel.image", Msg: "missing: " + msg}
	}
	p := cfg.Pos
	return &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel", Msg: "the YAML has no kernel section: " + msg}
}

// DefaultTarget is built when no --target is given, as LinuxKit's default.
const DefaultTarget = "kernel+initrd"

var targets = []Target{
	{Name: "kernel+initrd", Artifact: "-initrd.img", Description: "kernel, gzip cpio initrd and cmdline (<name>-kernel, <name>-initrd.img, <name>-cmdline)"},
	{Name: "tar-kernel-initrd", Artifact: "-initrd.tar", Description: "<name>-initrd.tar holding kernel, initrd.img, cmdline and ucode.cpio"},
	{Name: "tar", Description: "the root filesystem tree (use -o type=tar for LinuxKit's tar output)", Rootfs: true},
	{Name: "docker", Description: "the root filesystem tree with a Dockerfile (FROM scratch, ENTRYPOINT /bin/rc.init); -o type=image or --load gives the image itself, running /bin/rc.init", Rootfs: true},
	{Name: "uki", Artifact: ".efi", Description: "<name>.efi: a unified kernel image (systemd EFI stub + kernel + initrd + cmdline), bootable by UEFI firmware", Boots: true},
	{Name: "kernel+iso", Artifact: ".iso", Description: "<name>-kernel, <name>-cmdline and <name>.iso, an ISO 9660 (Rock Ridge) image of the root filesystem"},
	{Name: "kernel+squashfs", Artifact: "-squashfs.img", Description: "<name>-kernel, <name>-cmdline and <name>-squashfs.img, a SquashFS (zlib) image of the root filesystem"},
	{Name: "kernel+erofs", Artifact: "-erofs.img", Description: "<name>-kernel, <name>-cmdline and <name>-erofs.img, an uncompressed EROFS image of the root filesystem"},
	{Name: "iso-bios", Artifact: ".iso", Description: "<name>.iso: bootable ISO (ISOLINUX, BIOS) holding the root filesystem, mounted from the CD as root", Arches: bios, Boots: true},
	{Name: "iso-efi", Artifact: "-efi.iso", Description: "<name>-efi.iso: bootable ISO (EFI, unified kernel image) holding the root filesystem, mounted from the CD as root", Boots: true},
	{Name: "iso-efi-initrd", Artifact: "-efi-initrd.iso", Description: "<name>-efi-initrd.iso: bootable ISO (EFI) whose unified kernel image carries the initrd", Boots: true},
	{Name: "raw-efi", Artifact: "-efi.img", Description: "<name>-efi.img: GPT disk, EFI System Partition with systemd-boot and a unified kernel image", Disk: true, Boots: true},
	{Name: "qcow2-efi", Artifact: "-efi.qcow2", Description: "<name>-efi.qcow2: the raw-efi disk as qcow2", Disk: true, Boots: true},
	{Name: "raw-bios", Artifact: "-bios.img", Description: "<name>-bios.img: MBR disk, FAT32 partition with kernel and initrd, GRUB for BIOS", Disk: true, Arches: bios, Boots: true},
	{Name: "qcow2-bios", Artifact: ".qcow2", Description: "<name>.qcow2: the raw-bios disk as qcow2", Disk: true, Arches: bios, Boots: true},
	{Name: "vhd", Artifact: ".vhd", Description: "<name>.vhd: the raw-bios disk as a fixed VHD (Azure, Hyper-V)", Disk: true, Arches: bios, Boots: true},
	{Name: "dynamic-vhd", Artifact: ".vhd", Description: "<name>.vhd: the raw-bios disk as a dynamic VHD", Disk: true, Arches: bios, Boots: true},
	{Name: "vmdk", Artifact: ".vmdk", Description: "<name>.vmdk: the raw-bios disk as a stream-optimized VMDK (VMware)", Disk: true, Arches: bios, Boots: true},
	{Name: "gcp", Artifact: ".img.tar.gz", Description: "<name>.img.tar.gz: the raw-bios disk as disk.raw in a gzip tar, for Google Compute Engine", Disk: true, Arches: bios, Boots: true},
	{Name: "aws", Artifact: ".raw", Description: "<name>.raw: the raw-bios disk, for AWS EC2 import", Disk: true, Arches: bios, Boots: true},
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

// ParseTargets parses --target: one target name or several separated by
// commas, built from one root filesystem into one result. Empty means
// DefaultTarget. It returns every problem at once: unknown names, a name
// given twice, a tree target (tar, docker) with any other target (a tree is
// the whole result, so it cannot share it), and two targets writing the
// same file name.
func ParseTargets(list string) ([]Target, error) {
	if strings.TrimSpace(list) == "" {
		list = DefaultTarget
	}
	var out []Target
	var problems []string
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		t, ok := LookupTarget(name)
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("empty target name in %q", list))
		case !ok:
			problems = append(problems, fmt.Sprintf("unknown target %q (see --call targets)", name))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("target %s given twice", name))
		default:
			out = append(out, t)
		}
		seen[name] = true
	}
	if len(out) > 1 {
		for _, t := range out {
			if t.Rootfs {
				problems = append(problems, fmt.Sprintf("target %s is the root filesystem tree itself and cannot be combined with other targets (build it on its own)", t.Name))
			}
		}
		byArtifact := map[string]string{}
		for _, t := range out {
			if t.Artifact == "" {
				continue
			}
			if o, ok := byArtifact[t.Artifact]; ok {
				problems = append(problems, fmt.Sprintf("targets %s and %s both write <name>%s, so they cannot be built together", o, t.Name, t.Artifact))
				continue
			}
			byArtifact[t.Artifact] = t.Name
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// TargetNames joins the names of ts with commas, as --target takes them.
func TargetNames(ts []Target) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ",")
}

// Summary is the target's description for --call targets and --help, with
// the architectures it is limited to and whether it combines with others.
func (t Target) Summary() string {
	s := t.Description
	if len(t.Arches) > 0 {
		s += " (" + strings.Join(t.Arches, ", ") + " only)"
	}
	if t.Rootfs {
		s += " (on its own only, not with other targets)"
	}
	if t.Name == DefaultTarget {
		s += "; several targets are built from one root filesystem with a comma-separated list, e.g. kernel+initrd,iso-efi"
	}
	return s
}
