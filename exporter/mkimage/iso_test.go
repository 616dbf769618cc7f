package mkimage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// extractISO unpacks an ISO with xorriso, or skips without it.
func extractISO(t *testing.T, iso string) string {
	t.Helper()
	if _, err := exec.LookPath("osirrox"); err != nil {
		t.Skip("osirrox not installed (apt package xorriso)")
	}
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("osirrox", "-indev", iso, "-extract", "/", dir).CombinedOutput(); err != nil {
		t.Fatalf("osirrox: %v\n%s", err, out)
	}
	return dir
}

func elTorito(t *testing.T, iso string) string {
	t.Helper()
	out, err := exec.Command("xorriso", "-indev", iso, "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return string(out)
}

func TestKernelISO(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "kernel+iso", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, out, "sys-cmdline", "sys-kernel", "sys.iso")
	x := extractISO(t, filepath.Join(out, "sys.iso"))
	if b, _ := os.ReadFile(filepath.Join(x, "init")); string(b) != "#!/bin/sh\n" {
		t.Errorf("init: %q", b)
	}
	if _, err := os.Stat(filepath.Join(x, "boot")); err == nil {
		t.Error("boot/ must not be in the kernel+iso image")
	}
}

func TestISOBIOS(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "iso-bios", Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)}); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, out, "sys.iso")
	iso := filepath.Join(out, "sys.iso")
	x := extractISO(t, iso)
	cfg, _ := os.ReadFile(filepath.Join(x, "isolinux/isolinux.cfg"))
	if !strings.Contains(string(cfg), "KERNEL /boot/kernel\n") || !strings.Contains(string(cfg), "APPEND console=ttyS0 root=/dev/sr0\n") {
		t.Errorf("isolinux.cfg:\n%s", cfg)
	}
	if _, err := os.Stat(filepath.Join(x, "boot/cmdline")); err == nil {
		t.Error("boot/cmdline must be left out")
	}
	if k, _ := os.ReadFile(filepath.Join(x, "boot/kernel")); string(k) != "KERNEL IMAGE" {
		t.Errorf("boot/kernel: %q", k)
	}
	if rep := elTorito(t, iso); !strings.Contains(rep, "BIOS") || strings.Contains(rep, "UEFI") {
		t.Errorf("El Torito:\n%s", rep)
	}
	raw, _ := os.ReadFile(iso)
	if len(raw)%(1<<20) != 0 || raw[0] != 0x1d || raw[510] != 0x55 || raw[446] != 0x80 || raw[450] != 0x17 {
		t.Errorf("iso-bios is not isohybrid (size %d, MBR % x)", len(raw), raw[446:462])
	}

	// A root= of the user's own is kept.
	in2, out2 := bootTree(t, "console=ttyS0 root=/dev/sr1"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "iso-bios", Name: "sys", Input: in2, Output: out2, BootFiles: fakeBootFiles(t)}); err != nil {
		t.Fatal(err)
	}
	cfg, _ = os.ReadFile(filepath.Join(extractISO(t, filepath.Join(out2, "sys.iso")), "isolinux/isolinux.cfg"))
	if !strings.Contains(string(cfg), "APPEND console=ttyS0 root=/dev/sr1\n") {
		t.Errorf("isolinux.cfg with root=:\n%s", cfg)
	}
}

func TestISOEFI(t *testing.T) {
	for format, want := range map[string]struct {
		file, cmdline string
		tree, initrd  bool
	}{
		"iso-efi":        {"sys-efi.iso", "console=ttyS0 root=/dev/sr0", true, false},
		"iso-efi-initrd": {"sys-efi-initrd.iso", "console=ttyS0", false, true},
	} {
		in, out := bootTree(t, "console=ttyS0"), t.TempDir()
		if err := Run(context.Background(), Options{Format: format, Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)}); err != nil {
			t.Fatal(err)
		}
		assertOnly(t, out, want.file)
		iso := filepath.Join(out, want.file)
		if rep := elTorito(t, iso); !strings.Contains(rep, "UEFI") {
			t.Errorf("%s: El Torito:\n%s", format, rep)
		}
		x := extractISO(t, iso)
		if _, err := os.Stat(filepath.Join(x, "init")); (err == nil) != want.tree {
			t.Errorf("%s: root filesystem on the ISO: %v, want %v", format, err == nil, want.tree)
		}
		if _, err := os.Stat(filepath.Join(x, "efiboot.img")); err == nil {
			t.Errorf("%s: the EFI boot image must be hidden", format)
		}
		raw, _ := os.ReadFile(iso)
		if !bytes.Contains(raw, []byte(want.cmdline+"\x00")) && !bytes.Contains(raw, []byte(want.cmdline)) {
			t.Errorf("%s: no UKI with cmdline %q in the image", format, want.cmdline)
		}
		if hasGzip := bytes.Contains(raw, []byte("\x1f\x8b\x08")); hasGzip != want.initrd {
			t.Errorf("%s: initrd present %v, want %v", format, hasGzip, want.initrd)
		}
	}
}

func TestKernelSquashFS(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "kernel+squashfs", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, out, "sys-cmdline", "sys-kernel", "sys-squashfs.img")
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs not installed")
	}
	list, err := exec.Command("unsquashfs", "-l", "-no-progress", filepath.Join(out, "sys-squashfs.img")).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, list)
	}
	if got := strings.Fields(string(list)); strings.Join(got, " ") != "squashfs-root squashfs-root/init" {
		t.Errorf("listing %q, want the tree without boot/", got)
	}
}

func TestKernelEROFS(t *testing.T) {
	in, out := bootTree(t, "console=ttyS0"), t.TempDir()
	if err := Run(context.Background(), Options{Format: "kernel+erofs", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, out, "sys-cmdline", "sys-erofs.img", "sys-kernel")
	if _, err := exec.LookPath("fsck.erofs"); err != nil {
		t.Skip("fsck.erofs not installed")
	}
	x := filepath.Join(t.TempDir(), "x")
	if msg, err := exec.Command("fsck.erofs", "--extract="+x, filepath.Join(out, "sys-erofs.img")).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, msg)
	}
	ents, _ := os.ReadDir(x)
	if len(ents) != 1 || ents[0].Name() != "init" {
		t.Errorf("extracted %v, want the tree without boot/", ents)
	}
}
