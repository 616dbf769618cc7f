package formats

import (
	"fmt"
	"sort"
	"strings"
)

// Boot says how a target's system boots.
type Boot int

const (
	// BootNone: the artifact is no bootable system (a tree, an image).
	BootNone Boot = iota
	// BootInitrd: the kernel runs the system from an initrd.
	BootInitrd
	// BootMedium: the kernel mounts the medium that holds the root
	// filesystem (the CD, a disk holding the image) as its root.
	BootMedium
)

// Firmware is what starts the kernel of a target's artifact.
type Firmware string

const (
	// AnyLoader: the artifact is the kernel and its inputs, for a loader of
	// the user's choice (qemu -kernel, iPXE, a boot loader's configuration).
	AnyLoader Firmware = ""
	// BIOS: a PC BIOS boots the artifact.
	BIOS Firmware = "bios"
	// EFI: UEFI firmware boots the artifact.
	EFI Firmware = "efi"
)

// Cmdline is the rule a kernel command line must follow for a target.
type Cmdline int

const (
	// CmdlineAny: the command line is stored as it is.
	CmdlineAny Cmdline = iota
	// CmdlineGRUB: the command line is written into GRUB's configuration,
	// whose script language would interpret the characters of GRUBUnsafe.
	CmdlineGRUB
)

// GRUBUnsafe are the characters GRUB's script parser would interpret in a
// kernel command line written into grub.cfg.
const GRUBUnsafe = "$;&|<>{}'\\`#\n"

// The files that several targets write beside their own artifact, alike
// for all of them, after <name>.
const (
	KernelFile  = "-kernel"
	CmdlineFile = "-cmdline"
)

// Target is an output format selectable with --target.
type Target struct {
	Name        string
	Description string
	// Artifacts are the files the target writes, each after <name>
	// (LinuxKit's -name): its own, and KernelFile and CmdlineFile when it
	// writes them too. Tree targets write none: the tree is the result.
	Artifacts []string
	// Tree targets return the root filesystem itself; the others run
	// `lkbuild mkimage --format <Name>` over it.
	Tree bool
	// Dockerfile marks the tree target that adds LinuxKit's Dockerfile at
	// the root and whose result, exported as an image, runs the system's
	// init.
	Dockerfile bool
	// Disk targets write a disk image, sized by the SIZE build-arg.
	Disk bool
	// Initrd marks the targets whose artifacts hold the initrd and, besides
	// it, only what boot/ holds: they are written from the base of the root
	// filesystem and the initrd's segments (see Segment formats).
	Initrd bool
	// Arches lists the only architectures (GOARCH names) the target exists
	// for; empty means every architecture.
	Arches []string
	// Boot says how the system boots from the artifact.
	Boot Boot
	// Firmware is what boots the artifact (AnyLoader: the user's loader).
	Firmware Firmware
	// NeedsKernel marks the targets that fail without the kernel of the
	// kernel section, before anything is fetched. The others write what
	// they can without it, as LinuxKit (see docs/formats.md).
	NeedsKernel bool
	// Cmdline is the rule the kernel command line must follow.
	Cmdline Cmdline
	// NoBootTest, when set, is why hack/boottest does not boot the target;
	// every other target is booted there.
	NoBootTest string
}

// Own returns the target's own artifacts: Artifacts without KernelFile and
// CmdlineFile, which are the same for every target that writes them. Two
// targets whose own artifacts share a name cannot be built together.
func (t Target) Own() []string {
	var out []string
	for _, a := range t.Artifacts {
		if a != KernelFile && a != CmdlineFile {
			out = append(out, a)
		}
	}
	return out
}

// Supports reports, as an error naming the alternatives, whether the
// target exists for architecture arch (GOARCH spelling).
func (t Target) Supports(arch string) error {
	if len(t.Arches) == 0 {
		return nil
	}
	for _, a := range t.Arches {
		if a == arch {
			return nil
		}
	}
	why := "it exists only for " + strings.Join(t.Arches, ", ")
	if t.Firmware == BIOS {
		why = "it boots through a PC BIOS, which only " + strings.Join(t.Arches, ", ") + " has"
	}
	var alt []string
	for _, o := range All() {
		if o.Firmware == EFI && o.Supports(arch) == nil {
			alt = append(alt, o.Name)
		}
	}
	if len(alt) == 0 {
		return fmt.Errorf("target %s does not exist for %s: %s", t.Name, arch, why)
	}
	return fmt.Errorf("target %s does not exist for %s: %s (for %s use an EFI target: %s)", t.Name, arch, why, arch, strings.Join(alt, ", "))
}

// CheckCmdline reports whether the target can carry the kernel command line
// as it is: the BIOS disks write it into GRUB's configuration, whose script
// language would interpret some characters. llbgen calls it before building,
// to point at the YAML; the writer checks again.
func (t Target) CheckCmdline(cmdline string) error {
	if t.Cmdline != CmdlineGRUB {
		return nil
	}
	if i := strings.IndexAny(cmdline, GRUBUnsafe); i >= 0 {
		return fmt.Errorf("character %q cannot be passed through GRUB's configuration, which the %s format boots with (leave it out, or use an EFI format)", cmdline[i], t.Name)
	}
	return nil
}

// Summary is the target's description for --call targets and --help, with
// the architectures it is limited to and whether it combines with others.
func (t Target) Summary() string {
	s := t.Description
	if len(t.Arches) > 0 {
		s += " (" + strings.Join(t.Arches, ", ") + " only)"
	}
	if t.Tree {
		s += " (on its own only, not with other targets)"
	}
	if t.Name == Default {
		s += "; several targets are built from one root filesystem with a comma-separated list, e.g. kernel+initrd,iso-efi"
	}
	return s
}

// All lists every target, sorted by name.
func All() []Target {
	out := append([]Target(nil), table...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a target by name.
func Lookup(name string) (Target, bool) {
	for _, t := range table {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// Names joins the names of ts with commas, as --target takes them.
func Names(ts []Target) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ",")
}
