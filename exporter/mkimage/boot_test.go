package mkimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/pe"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/lkbuild/lkbuild/exporter/disk"
	"github.com/lkbuild/lkbuild/exporter/internal/petest"
)

// fakeBootData are stand-ins for the frontend image's bootloader files:
// the real ones are used by the integration and boot tests.
func fakeBootData() map[string][]byte {
	return map[string][]byte{
		"linux.efi.stub":   petest.Stub(0x400),
		"systemd-boot.efi": []byte("MZ systemd-boot"),
		"grub-boot.img":    bytes.Repeat([]byte{0xb0}, 512),
		"grub-core.img":    bytes.Repeat([]byte{0xc0}, 1500),
		"isolinux.bin":     bytes.Repeat([]byte{0x15}, 2048),
		"ldlinux.c32":      []byte("ldlinux"),
		"isohdpfx.bin":     bytes.Repeat([]byte{0x1d}, 432),
	}
}

// fakeBootFiles lays out fakeBootData for amd64.
func fakeBootFiles(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	amd := filepath.Join(dir, "amd64")
	os.MkdirAll(amd, 0o755)
	for name, data := range fakeBootData() {
		if err := os.WriteFile(filepath.Join(amd, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func bootTree(t *testing.T, cmdline string) string {
	t.Helper()
	in := t.TempDir()
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/kernel"), []byte("KERNEL IMAGE"), 0o644)
	os.WriteFile(filepath.Join(in, "boot/cmdline"), []byte(cmdline), 0o644)
	os.WriteFile(filepath.Join(in, "init"), []byte("#!/bin/sh\n"), 0o755)
	return in
}

func fatFile(t *testing.T, img, p string) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	end := fi.Size()
	hdr := make([]byte, 8)
	f.ReadAt(hdr, 512)
	if string(hdr) == "EFI PART" {
		end -= 1 << 20
	}
	fs, err := fat32.Read(file.New(f, true), end-disk.PartitionOffset, disk.PartitionOffset, 512)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fs.OpenFile("/"+p, os.O_RDONLY)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

func TestUKI(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0 quiet\n"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "uki", Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)}); err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(filepath.Join(out, "sys.efi"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	for _, s := range f.Sections {
		b, _ := io.ReadAll(io.LimitReader(s.Open(), int64(s.VirtualSize)))
		got[s.Name] = string(b)
	}
	if got[".linux"] != "KERNEL IMAGE" || got[".cmdline"] != "console=ttyS0 quiet" || !strings.HasPrefix(got[".initrd"], "\x1f\x8b") {
		t.Errorf("sections: linux %q cmdline %q initrd starts %q", got[".linux"], got[".cmdline"], got[".initrd"][:2])
	}
	if !strings.Contains(got[".osrel"], `PRETTY_NAME="sys"`) {
		t.Errorf(".osrel: %q", got[".osrel"])
	}
	assertOnly(t, out, "sys.efi")
}

func TestRawEFI(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "raw-efi", Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)}); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(out, "sys-efi.img")
	if got := fatFile(t, img, "EFI/BOOT/BOOTX64.EFI"); string(got) != "MZ systemd-boot" {
		t.Errorf("BOOTX64.EFI: %q", got)
	}
	if got := fatFile(t, img, "loader/loader.conf"); string(got) != "timeout 0\n" {
		t.Errorf("loader.conf: %q", got)
	}
	if got := fatFile(t, img, "EFI/Linux/linuxkit.efi"); !bytes.HasPrefix(got, []byte("MZ")) || !bytes.Contains(got, []byte("KERNEL IMAGE")) {
		t.Error("EFI/Linux/linuxkit.efi is not the unified kernel image")
	}
	assertOnly(t, out, "sys-efi.img")
}

func TestRawBIOS(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0 root=/dev/sda1"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "raw-bios", Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t), Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(out, "sys-bios.img")
	raw, _ := os.ReadFile(img)
	if len(raw) != 64<<20 {
		t.Errorf("disk is %d bytes, want the 64 MiB asked for", len(raw))
	}
	if raw[0] != 0xb0 || raw[439] != 0xb0 || raw[512] != 0xc0 || raw[512+1499] != 0xc0 {
		t.Error("GRUB boot.img/core.img not at the start of the disk")
	}
	if got := fatFile(t, img, "kernel"); string(got) != "KERNEL IMAGE" {
		t.Errorf("kernel: %q", got)
	}
	cfg := string(fatFile(t, img, "boot/grub/grub.cfg"))
	if !strings.Contains(cfg, "linux /kernel console=ttyS0 root=/dev/sda1\n") || !strings.Contains(cfg, "initrd /initrd.img") {
		t.Errorf("grub.cfg:\n%s", cfg)
	}
	if got := fatFile(t, img, "initrd.img"); !bytes.HasPrefix(got, []byte{0x1f, 0x8b}) {
		t.Error("initrd.img is not gzip")
	}
	assertOnly(t, out, "sys-bios.img")
}

func TestBootFormatErrors(t *testing.T) {
	boot := fakeBootFiles(t)
	noKernel := t.TempDir()
	os.WriteFile(filepath.Join(noKernel, "init"), []byte("x"), 0o755)
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"no kernel":     {Options{Format: "raw-efi", Input: noKernel}, "has no kernel"},
		"bios on arm64": {Options{Format: "raw-bios", Input: bootTree(t, ""), Arch: "arm64"}, "does not exist for arm64"},
		"unsafe cmdline": {Options{Format: "vhd", Input: bootTree(t, "console=ttyS0 x=$y")},
			`character '$' cannot be passed`},
		"missing bootloader": {Options{Format: "uki", Input: bootTree(t, ""), Arch: "riscv64"}, "linux.efi.stub for riscv64 missing"},
		"too small":          {Options{Format: "raw-efi", Input: bootTree(t, ""), Size: 1 << 20}, "too small"},
	} {
		out := t.TempDir()
		tc.o.Name, tc.o.Output, tc.o.BootFiles = "sys", out, boot
		err := Run(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
		assertOnly(t, out)
	}
}

// assertOnly checks that dir holds exactly names: no temporary files left.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// TestUKIGzipKernel: an arm64 kernel shipped as Image.gz is decompressed
// into the .linux section, which the EFI stub starts with LoadImage.
func TestUKIGzipKernel(t *testing.T) {
	in, out := bootTree(t, "console=ttyAMA0"), t.TempDir()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("MZ arm64 Image"))
	zw.Close()
	os.WriteFile(filepath.Join(in, "boot/kernel"), z.Bytes(), 0o644)
	boot := fakeBootFiles(t)
	os.MkdirAll(filepath.Join(boot, "arm64"), 0o755)
	os.WriteFile(filepath.Join(boot, "arm64/linux.efi.stub"), petest.Stub(0x400), 0o644)
	if err := Run(context.Background(), Options{Format: "uki", Name: "sys", Input: in, Output: out, BootFiles: boot, Arch: "arm64"}); err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(filepath.Join(out, "sys.efi"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".linux")
	if s == nil {
		t.Fatal("no .linux section")
	}
	b, _ := io.ReadAll(io.LimitReader(s.Open(), int64(s.VirtualSize)))
	if string(b) != "MZ arm64 Image" {
		t.Errorf(".linux holds %q, want the decompressed image", b)
	}
	assertOnly(t, out, "sys.efi")
}
