package mkimage

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKernelInitrd(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/kernel"), []byte("KERNEL"), 0o644)
	os.WriteFile(filepath.Join(in, "boot/cmdline"), []byte("console=ttyS0"), 0o644)
	os.WriteFile(filepath.Join(in, "boot/ucode.cpio"), []byte("UCODE"), 0o644)
	os.WriteFile(filepath.Join(in, "init"), []byte("#!/bin/sh"), 0o755)
	if err := Run(context.Background(), Options{Format: "kernel+initrd", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	k, _ := os.ReadFile(filepath.Join(out, "sys-kernel"))
	c, _ := os.ReadFile(filepath.Join(out, "sys-cmdline"))
	i, _ := os.ReadFile(filepath.Join(out, "sys-initrd.img"))
	if string(k) != "KERNEL" || string(c) != "console=ttyS0" {
		t.Errorf("kernel %q cmdline %q", k, c)
	}
	if len(i) < 7 || string(i[:5]) != "UCODE" || i[5] != 0x1f || i[6] != 0x8b {
		t.Errorf("initrd must be the microcode followed by a gzip stream, starts %q", i[:min(len(i), 8)])
	}
}

func TestNoCmdlineWhenEmpty(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/cmdline"), nil, 0o644)
	if err := Run(context.Background(), Options{Format: "kernel+initrd", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "sys-cmdline")); !os.IsNotExist(err) {
		t.Errorf("empty cmdline written: %v", err)
	}
}

func TestFailureLeavesNothing(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	// An unreadable file makes the initrd fail after files were created.
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/kernel"), []byte("KERNEL"), 0o644)
	os.Symlink("x", filepath.Join(in, "dangling"))
	Formats["test-fail"] = func(_ context.Context, o Options) error {
		os.WriteFile(filepath.Join(o.Output, "half"), []byte("x"), 0o644)
		return os.ErrInvalid
	}
	defer delete(Formats, "test-fail")
	if err := Run(context.Background(), Options{Format: "test-fail", Name: "sys", Input: in, Output: out}); err == nil {
		t.Fatal("expected an error")
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 0 {
		t.Errorf("output holds %d entries after a failure", len(ents))
	}
}

func TestUnknownFormat(t *testing.T) {
	if err := Run(context.Background(), Options{Format: "nope", Name: "x", Input: t.TempDir(), Output: t.TempDir()}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestTarKernelInitrd(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/kernel"), []byte("KERNEL"), 0o644)
	os.WriteFile(filepath.Join(in, "boot/ucode.cpio"), []byte("UCODE"), 0o644)
	os.WriteFile(filepath.Join(in, "boot/cmdline"), nil, 0o644)
	os.WriteFile(filepath.Join(in, "init"), []byte("#!/bin/sh"), 0o755)
	if err := Run(context.Background(), Options{Format: "tar-kernel-initrd", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 || ents[0].Name() != "sys-initrd.tar" {
		t.Fatalf("output = %v, want only sys-initrd.tar", ents)
	}
	f, err := os.Open(filepath.Join(out, "sys-initrd.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Name == "initrd.img" {
			// the initrd alone, without the microcode in front
			if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("initrd.img is not a bare gzip stream")
			}
			b = nil
		}
		got = append(got, fmt.Sprintf("%s %o %s", h.Name, h.Mode, b))
	}
	// The empty cmdline is left out, as LinuxKit does.
	if want := "kernel 644 KERNEL|initrd.img 644 |ucode.cpio 644 UCODE"; strings.Join(got, "|") != want {
		t.Errorf("tar = %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestWithoutKernel: from a tree without boot/ (a YAML without a kernel
// section), the formats that do not boot write what LinuxKit writes, and
// say that no kernel was written.
func TestWithoutKernel(t *testing.T) {
	in := t.TempDir()
	os.WriteFile(filepath.Join(in, "init"), []byte("#!/bin/sh"), 0o755)
	for format, want := range map[string]string{
		"kernel+initrd":     "sys-initrd.img",
		"tar-kernel-initrd": "sys-initrd.tar",
		"kernel+squashfs":   "sys-squashfs.img",
		"kernel+erofs":      "sys-erofs.img",
		"kernel+iso":        "sys.iso",
	} {
		out := t.TempDir()
		var log strings.Builder
		if err := Run(context.Background(), Options{Format: format, Name: "sys", Input: in, Output: out, Log: &log}); err != nil {
			t.Errorf("%s: %v", format, err)
			continue
		}
		var names []string
		ents, _ := os.ReadDir(out)
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != want {
			t.Errorf("%s wrote %v, want only %s", format, names, want)
		}
		if !strings.Contains(log.String(), "no kernel written") || !strings.Contains(log.String(), "wrote "+want+"\n") {
			t.Errorf("%s: log %q", format, log.String())
		}
	}
	out := t.TempDir()
	var tarNames []string
	if err := Run(context.Background(), Options{Format: "tar-kernel-initrd", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, "sys-initrd.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		tarNames = append(tarNames, h.Name)
	}
	if strings.Join(tarNames, " ") != "initrd.img" {
		t.Errorf("tar-kernel-initrd without a kernel holds %v, want only initrd.img", tarNames)
	}
}

// TestArtifactTimes: the files written, and the output directory, carry
// SOURCE_DATE_EPOCH, else the Unix epoch, not the time of the build.
func TestArtifactTimes(t *testing.T) {
	in := t.TempDir()
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/kernel"), []byte("KERNEL"), 0o644)
	os.WriteFile(filepath.Join(in, "boot/cmdline"), []byte("console=ttyS0"), 0o644)
	sde := time.Unix(1700000000, 0)
	for _, epoch := range []*time.Time{nil, &sde} {
		out := t.TempDir()
		if err := Run(context.Background(), Options{Format: "kernel+initrd", Name: "sys", Input: in, Output: out, Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
		want := time.Unix(0, 0)
		if epoch != nil {
			want = *epoch
		}
		for _, n := range []string{"sys-kernel", "sys-initrd.img", "sys-cmdline", ""} {
			fi, err := os.Stat(filepath.Join(out, n))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(want) {
				t.Errorf("epoch %v: %q has time %s, want %s", epoch, n, fi.ModTime(), want)
			}
		}
	}
}
