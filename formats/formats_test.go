package formats

import (
	"strings"
	"testing"
)

// TestParse: a comma-separated --target gives the targets in order; every
// problem of the list is reported in one error.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string   // the names parsed, or "" when the list is refused
		errs []string // parts of the error
	}{
		{in: "", want: "kernel+initrd"},
		{in: "iso-efi", want: "iso-efi"},
		{in: "kernel+initrd,iso-efi", want: "kernel+initrd,iso-efi"},
		{in: " raw-efi , kernel+squashfs,kernel+erofs", want: "raw-efi,kernel+squashfs,kernel+erofs"},
		{in: "kernel+initrd,kernel+iso,kernel+squashfs", want: "kernel+initrd,kernel+iso,kernel+squashfs"},
		{in: "tar", want: "tar"},
		{in: "docker", want: "docker"},
		{in: "floppy,kernel+initrd,tape", errs: []string{`unknown target "floppy"`, `unknown target "tape"`}},
		{in: "iso-efi,iso-efi", errs: []string{"target iso-efi given twice"}},
		{in: "kernel+initrd,", errs: []string{"empty target name"}},
		{in: "tar,iso-efi", errs: []string{"target tar is the root filesystem tree itself"}},
		{in: "kernel+initrd,docker", errs: []string{"target docker is the root filesystem tree itself"}},
		{in: "vhd,dynamic-vhd", errs: []string{"targets vhd and dynamic-vhd both write <name>.vhd"}},
		{in: "kernel+iso,iso-bios,floppy", errs: []string{"targets kernel+iso and iso-bios both write <name>.iso", `unknown target "floppy"`}},
	} {
		ts, err := Parse(tc.in)
		if tc.want != "" {
			if err != nil || Names(ts) != tc.want {
				t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, Names(ts), err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("Parse(%q) = %q, want an error", tc.in, Names(ts))
			continue
		}
		for _, e := range tc.errs {
			if !strings.Contains(err.Error(), e) {
				t.Errorf("Parse(%q): error %q lacks %q", tc.in, err, e)
			}
		}
	}
}

// TestTableConsistent checks what the table's fields imply of each other,
// so a new entry cannot contradict itself.
func TestTableConsistent(t *testing.T) {
	seen := map[string]bool{}
	if _, ok := Lookup(Default); !ok {
		t.Errorf("the default target %s is not in the table", Default)
	}
	for _, tg := range All() {
		name := tg.Name
		if name == "" || strings.ContainsAny(name, ", \t") || seen[name] {
			t.Errorf("target name %q is empty, has a separator or is given twice", name)
		}
		seen[name] = true
		if tg.Description == "" {
			t.Errorf("%s: no description", name)
		}
		if tg.Tree {
			if len(tg.Artifacts) != 0 || tg.Boot != BootNone || tg.Disk || tg.NeedsKernel {
				t.Errorf("%s: a tree target writes no artifact, does not boot, is no disk and needs no kernel", name)
			}
		} else if len(tg.Own()) != 1 {
			t.Errorf("%s: artifacts %q, want exactly one of its own besides %s and %s", name, tg.Artifacts, KernelFile, CmdlineFile)
		}
		if tg.Dockerfile && !tg.Tree {
			t.Errorf("%s: only a tree target can carry the Dockerfile", name)
		}
		// A target booted by firmware carries the kernel itself, so it
		// cannot be built without one.
		if tg.Firmware != AnyLoader && (!tg.NeedsKernel || tg.Boot == BootNone) {
			t.Errorf("%s: booted by %s firmware, so it boots and needs the kernel", name, tg.Firmware)
		}
		if tg.NeedsKernel && tg.Firmware == AnyLoader {
			t.Errorf("%s: needs the kernel but no firmware boots it", name)
		}
		if tg.Disk && tg.Firmware == AnyLoader {
			t.Errorf("%s: a disk is booted by firmware", name)
		}
		if tg.Firmware == BIOS && strings.Join(tg.Arches, ",") != "amd64" {
			t.Errorf("%s: BIOS targets exist for amd64 only, not %v", name, tg.Arches)
		}
		if tg.Cmdline == CmdlineGRUB && (tg.Firmware != BIOS || !tg.Disk) {
			t.Errorf("%s: GRUB's command-line rule is the BIOS disks'", name)
		}
		if tg.Boot == BootNone && tg.NoBootTest == "" {
			t.Errorf("%s: does not boot, so it needs a reason for having no boot test", name)
		}
		for _, a := range tg.Own() {
			if !strings.Contains(tg.Description, "<name>"+a) {
				t.Errorf("%s: artifact %q not in the description %q", name, a, tg.Description)
			}
		}
	}
}

// TestSupports: BIOS targets are refused for arm64 with the EFI targets as
// the alternatives; the others exist everywhere.
func TestSupports(t *testing.T) {
	for _, name := range []string{"raw-bios", "iso-bios", "vhd", "gcp", "aws", "qcow2-bios", "dynamic-vhd", "vmdk"} {
		tg, _ := Lookup(name)
		err := tg.Supports("arm64")
		if err == nil || !strings.Contains(err.Error(), "target "+name+" does not exist for arm64: it boots through a PC BIOS, which only amd64 has") ||
			!strings.Contains(err.Error(), "use an EFI target: iso-efi, iso-efi-initrd, qcow2-efi, raw-efi, uki") {
			t.Errorf("%s on arm64: %v", name, err)
		}
		if err := tg.Supports("amd64"); err != nil {
			t.Errorf("%s on amd64: %v", name, err)
		}
	}
	for _, name := range []string{"raw-efi", "iso-efi", "uki", "kernel+initrd", "tar"} {
		tg, _ := Lookup(name)
		if err := tg.Supports("arm64"); err != nil {
			t.Errorf("%s on arm64: %v", name, err)
		}
	}
}

// TestCheckCmdline: the BIOS disks refuse what GRUB would interpret; every
// other target takes the command line as it is.
func TestCheckCmdline(t *testing.T) {
	const bad = "console=ttyS0 x=$y"
	var grub []string
	for _, tg := range All() {
		if err := tg.CheckCmdline("console=ttyS0 root=/dev/sda1"); err != nil {
			t.Errorf("%s: %v", tg.Name, err)
		}
		err := tg.CheckCmdline(bad)
		if err == nil {
			continue
		}
		grub = append(grub, tg.Name)
		if !strings.Contains(err.Error(), `character '$' cannot be passed through GRUB's configuration, which the `+tg.Name+" format boots with") {
			t.Errorf("%s: %v", tg.Name, err)
		}
	}
	if got := strings.Join(grub, ","); got != "aws,dynamic-vhd,gcp,qcow2-bios,raw-bios,vhd,vmdk" {
		t.Errorf("targets refusing %q: %s", bad, got)
	}
}
