package qemu

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mbr returns a 1 KiB disk start: a GPT's protective MBR and header when
// gpt, else an MBR with one FAT32 partition.
func mbr(gpt bool) []byte {
	b := make([]byte, 1024)
	b[510], b[511] = 0x55, 0xaa
	if gpt {
		b[446+4] = 0xee
		copy(b[512:], "EFI PART")
	} else {
		b[446] = 0x80
		b[446+4] = 0x0c
	}
	return b
}

// iso returns an ISO 9660 image with an El Torito catalog whose
// validation entry has platform plat and, when section is not 0, one
// section header of that platform.
func iso(plat, section byte) []byte {
	const sector = 2048
	b := make([]byte, 20*sector)
	copy(b[16*sector:], "\x01CD001\x01")
	brvd := b[17*sector:]
	copy(brvd, "\x00CD001\x01EL TORITO SPECIFICATION")
	binary.LittleEndian.PutUint32(brvd[0x47:], 19)
	cat := b[19*sector:]
	cat[0], cat[1] = 1, plat
	cat[30], cat[31] = 0x55, 0xaa
	cat[32] = 0x88
	if section != 0 {
		cat[64], cat[65] = 0x91, section
		cat[96] = 0x88
	}
	return b
}

// qcow2 returns a qcow2 image (64 KiB clusters) whose first guest cluster
// starts with start, or whose L1 table is empty when start is nil.
func qcow2(start []byte) []byte {
	const c = 1 << 16
	b := make([]byte, 4*c)
	copy(b, "QFI\xfb")
	binary.BigEndian.PutUint32(b[4:], 3)
	binary.BigEndian.PutUint32(b[20:], 16)
	binary.BigEndian.PutUint64(b[40:], c)
	if start != nil {
		binary.BigEndian.PutUint64(b[c:], 1<<63|2*c)
		binary.BigEndian.PutUint64(b[2*c:], 1<<63|3*c)
		copy(b[3*c:], start)
	}
	return b
}

// peFile returns a PE image for machine with the named sections. Its
// symbol table pointer points past the end of the file, as in systemd's
// stub.
func peFile(machine uint16, sections ...string) []byte {
	b := make([]byte, 0x200)
	binary.LittleEndian.PutUint32(b[0x44+8:], 0x10000)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	h := b[0x44:]
	binary.LittleEndian.PutUint16(h[0:], machine)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(sections)))
	for i, s := range sections {
		copy(b[0x44+20+40*i:], s)
	}
	return b
}

func bzImage() []byte {
	b := make([]byte, 4096)
	b[510], b[511] = 0x55, 0xaa
	copy(b[0x202:], "HdrS")
	return b
}

func arm64Image() []byte {
	b := make([]byte, 4096)
	copy(b[0x38:], "ARM\x64")
	return b
}

func TestDetectFiles(t *testing.T) {
	dir := t.TempDir()
	vhdFixed := append(mbr(false), make([]byte, 512)...)
	copy(vhdFixed[1024:], "conectix")
	for _, tc := range []struct {
		name   string
		data   []byte
		kind   Kind
		format string
		fw     Firmware
		arch   string
	}{
		{"x-efi.img", mbr(true), Disk, "raw", EFI, ""},
		// content wins over the name
		{"gpt-bios.img", mbr(true), Disk, "raw", EFI, ""},
		{"x-bios.img", mbr(false), Disk, "raw", BIOS, ""},
		{"x.raw", mbr(false), Disk, "raw", BIOS, ""},
		{"x.iso", iso(0, 0), ISO, "", BIOS, ""},
		{"x-efi.iso", iso(0xef, 0), ISO, "", EFI, ""},
		{"hybrid.iso", iso(0, 0xef), ISO, "", BIOS, ""},
		{"efi-section.iso", iso(0xef, 0xef), ISO, "", EFI, ""},
		{"gpt.qcow2", qcow2(mbr(true)), Disk, "qcow2", EFI, ""},
		{"mbr-efi.qcow2", qcow2(mbr(false)), Disk, "qcow2", BIOS, ""},
		// an empty first cluster: the name decides
		{"x-efi.qcow2", qcow2(nil), Disk, "qcow2", EFI, ""},
		{"x.qcow2", qcow2(nil), Disk, "qcow2", BIOS, ""},
		{"x.vhd", append([]byte("conectix"), make([]byte, 1024)...), Disk, "vpc", BIOS, ""},
		{"fixed.vhd", vhdFixed, Disk, "vpc", BIOS, ""},
		{"x.vmdk", append([]byte("KDMV"), make([]byte, 1024)...), Disk, "vmdk", BIOS, ""},
		{"x.efi", peFile(0x8664, ".text", ".osrel", ".cmdline", ".initrd", ".linux"), UKI, "", EFI, "amd64"},
		{"arm.efi", peFile(0xaa64, ".linux"), UKI, "", EFI, "arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Detect(write(t, filepath.Join(dir, tc.name), tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if a.Kind != tc.kind || a.Format != tc.format || a.Firmware != tc.fw || a.Arch != tc.arch {
				t.Errorf("got %v %q %v %q, want %v %q %v %q", a.Kind, a.Format, a.Firmware, a.Arch, tc.kind, tc.format, tc.fw, tc.arch)
			}
		})
	}
}

func TestDetectNotBootable(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty.img":  nil,
		"zeros.img":  make([]byte, 4096),
		"no-uki.efi": peFile(0x8664, ".text"), // a PE without .linux, not named -kernel
		"mbr-empty":  func() []byte { b := make([]byte, 1024); b[510], b[511] = 0x55, 0xaa; return b }(),
	} {
		if a, err := Detect(write(t, filepath.Join(dir, name), data)); err == nil {
			t.Errorf("%s: detected %+v, want an error", name, a)
		}
	}
	if _, err := Detect(write(t, filepath.Join(dir, "vmlinuz"), bzImage())); err == nil || !strings.Contains(err.Error(), "<name>-kernel") {
		t.Errorf("a kernel not named -kernel: err = %v", err)
	}
}

func TestDetectKernelInitrd(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "minimal-kernel"), bzImage())
	write(t, filepath.Join(dir, "minimal-initrd.img"), []byte{0x1f, 0x8b})
	write(t, filepath.Join(dir, "minimal-cmdline"), []byte("console=ttyS0 console=tty0\n"))
	write(t, filepath.Join(dir, "minimal.iso"), iso(0, 0)) // another format beside
	want := Artifact{Kind: KernelInitrd, Path: filepath.Join(dir, "minimal-kernel"), Initrd: filepath.Join(dir, "minimal-initrd.img"),
		Cmdline: "console=ttyS0 console=tty0", Arch: "amd64"}
	for _, p := range []string{dir, filepath.Join(dir, "minimal"), filepath.Join(dir, "minimal-kernel")} {
		a, err := Detect(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if a != want {
			t.Errorf("%s: got %+v, want %+v", p, a, want)
		}
	}

	arm := t.TempDir()
	write(t, filepath.Join(arm, "a-kernel"), arm64Image())
	write(t, filepath.Join(arm, "a-initrd.img"), nil)
	if a, err := Detect(arm); err != nil || a.Arch != "arm64" || a.Cmdline != "" {
		t.Errorf("arm64 kernel without cmdline: %+v, %v", a, err)
	}

	write(t, filepath.Join(dir, "other-kernel"), bzImage())
	write(t, filepath.Join(dir, "other-initrd.img"), nil)
	if _, err := Detect(dir); err == nil || !strings.Contains(err.Error(), "several") {
		t.Errorf("two kernel+initrd in a directory: err = %v", err)
	}
	if _, err := Detect(filepath.Join(dir, "nothing")); err == nil || !strings.Contains(err.Error(), "nothing-kernel") {
		t.Errorf("a prefix with no files: err = %v", err)
	}
	if _, err := Detect(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no <name>-kernel") {
		t.Errorf("an empty directory: err = %v", err)
	}
	noInitrd := t.TempDir()
	write(t, filepath.Join(noInitrd, "x-kernel"), bzImage())
	if _, err := Detect(filepath.Join(noInitrd, "x-kernel")); err == nil || !strings.Contains(err.Error(), "x-initrd.img") {
		t.Errorf("a kernel without initrd: err = %v", err)
	}
}
