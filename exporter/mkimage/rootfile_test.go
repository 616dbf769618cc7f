package mkimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"boot", "usr/lib/kernels", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "usr/lib/kernels/vmlinuz-6.6"), []byte("K"), 0o644)
	for link, target := range map[string]string{
		"boot/rel":      "../usr/lib/kernels/vmlinuz-6.6",
		"boot/abs":      "/usr/lib/kernels/vmlinuz-6.6",
		"boot/chain":    "abs",
		"boot/viadir":   "/lib/kernels/vmlinuz-6.6",
		"lib":           "usr/lib",
		"boot/dotdots":  "../../../../usr/lib/kernels/vmlinuz-6.6",
		"boot/devzero":  "/dev/zero",
		"boot/mount":    "/proc/self/mountinfo",
		"boot/loop1":    "loop2",
		"boot/loop2":    "loop1",
		"boot/dangling": "nowhere",
		"boot/dir":      "/usr/lib",
		"boot/throughf": "/usr/lib/kernels/vmlinuz-6.6/x",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for rel, want := range map[string]string{
		"boot/rel":      "usr/lib/kernels/vmlinuz-6.6",
		"boot/abs":      "usr/lib/kernels/vmlinuz-6.6",
		"boot/chain":    "usr/lib/kernels/vmlinuz-6.6",
		"boot/viadir":   "usr/lib/kernels/vmlinuz-6.6",
		"boot/dir":      "usr/lib",
		"boot/./rel":    "usr/lib/kernels/vmlinuz-6.6",
		"lib/kernels":   "usr/lib/kernels",
		"boot/dotdots":  "error: the symlink /boot/dotdots -> ../../../../usr/lib/kernels/vmlinuz-6.6 leaves the root filesystem",
		"boot/devzero":  "error: the symlink /boot/devzero -> /dev/zero points to /dev/zero, which is not in the root filesystem",
		"boot/mount":    "error: the symlink /boot/mount -> /proc/self/mountinfo points to /proc/self/mountinfo, which is not in the root filesystem",
		"boot/loop1":    "error: more than 40 symlinks",
		"boot/dangling": "error: the symlink /boot/dangling -> nowhere points to /boot/nowhere, which is not in the root filesystem",
		"boot/throughf": "error: the symlink /boot/throughf -> /usr/lib/kernels/vmlinuz-6.6/x points to /usr/lib/kernels/vmlinuz-6.6/x, which is not in the root filesystem",
		"boot/missing":  "absent",
		"nodir/kernel":  "absent",
	} {
		got, _, err := resolveInRoot(root, rel)
		switch {
		case err != nil && strings.Contains(err.Error(), errAbsent.Error()) && want == "absent":
		case err != nil && strings.HasPrefix(want, "error: ") && strings.Contains(err.Error(), strings.TrimPrefix(want, "error: ")):
		case err == nil && got == want:
		default:
			t.Errorf("%s: got %q, %v; want %s", rel, got, err, want)
		}
	}
}

// hostileTree is a bootable tree whose boot file rel is replaced by make.
func hostileTree(t *testing.T, rel string, make func(p string) error) string {
	t.Helper()
	in := bootTree(t, "console=ttyS0")
	os.WriteFile(filepath.Join(in, "boot/ucode.cpio"), []byte("UCODE"), 0o644)
	p := filepath.Join(in, rel)
	os.Remove(p)
	if err := make(p); err != nil {
		t.Skipf("cannot make %s here: %v", rel, err)
	}
	return in
}

func symlinkTo(target string) func(string) error {
	return func(p string) error { return os.Symlink(target, p) }
}

// readersOf are the formats that read each boot file.
var readersOf = map[string][]string{
	"boot/kernel": FormatNames(),
	"boot/cmdline": {"kernel+initrd", "tar-kernel-initrd", "uki", "kernel+iso", "kernel+squashfs", "kernel+erofs",
		"iso-bios", "iso-efi", "iso-efi-initrd", "raw-efi", "raw-bios", "vmdk"},
	"boot/ucode.cpio": {"kernel+initrd", "tar-kernel-initrd", "uki", "iso-efi-initrd", "raw-efi", "raw-bios"},
}

// TestHostileBootFiles: a boot file that leads out of the root filesystem
// (to /dev/zero, /proc, the host's files), a FIFO, a device, a directory
// or an oversized file makes every format that reads it fail at once with
// an error naming the file and leaves nothing in the output. mkimage ran
// in the daemon's namespace and followed them: /dev/zero filled the disk or
// the memory, a FIFO hung for ever.
func TestHostileBootFiles(t *testing.T) {
	boot := fakeBootFiles(t)
	cases := []struct {
		name, rel string
		make      func(p string) error
		want      string
	}{
		{"kernel to /dev/zero", "boot/kernel", symlinkTo("/dev/zero"), "/boot/kernel in the root filesystem: the symlink /boot/kernel -> /dev/zero points to /dev/zero, which is not in the root filesystem"},
		{"kernel to ../../dev/zero", "boot/kernel", symlinkTo("../../../../dev/zero"), "leaves the root filesystem"},
		{"cmdline to /dev/zero", "boot/cmdline", symlinkTo("/dev/zero"), "/boot/cmdline in the root filesystem: the symlink"},
		{"cmdline to mountinfo", "boot/cmdline", symlinkTo("/proc/self/mountinfo"), "/boot/cmdline in the root filesystem: the symlink /boot/cmdline -> /proc/self/mountinfo"},
		{"ucode to /dev/zero", "boot/ucode.cpio", symlinkTo("/dev/zero"), "/boot/ucode.cpio in the root filesystem: the symlink"},
		{"kernel FIFO", "boot/kernel", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "/boot/kernel in the root filesystem: a FIFO, not a regular file"},
		{"cmdline FIFO", "boot/cmdline", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "/boot/cmdline in the root filesystem: a FIFO, not a regular file"},
		{"ucode FIFO", "boot/ucode.cpio", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "a FIFO, not a regular file"},
		{"kernel device", "boot/kernel", func(p string) error { return syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|5) }, "a character device, not a regular file"},
		{"cmdline directory", "boot/cmdline", func(p string) error { return os.Mkdir(p, 0o755) }, "a directory, not a regular file"},
		{"cmdline oversized", "boot/cmdline", func(p string) error { return os.WriteFile(p, make([]byte, CmdlineFile.Max+1), 0o644) }, "65537 bytes, more than the 65536 allowed"},
		{"kernel oversized", "boot/kernel", func(p string) error {
			f, err := os.Create(p)
			if err == nil {
				err = f.Truncate(KernelFile.Max + 1) // sparse
				f.Close()
			}
			return err
		}, "bytes, more than the"},
		{"kernel to a device in the tree", "boot/kernel", func(p string) error {
			dev := filepath.Join(filepath.Dir(filepath.Dir(p)), "dev")
			os.Mkdir(dev, 0o755)
			if err := syscall.Mknod(filepath.Join(dev, "zero"), syscall.S_IFCHR|0o666, 1<<8|5); err != nil {
				return err
			}
			return os.Symlink("/dev/zero", p)
		}, "resolves to /dev/zero, a character device, not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range readersOf[tc.rel] {
				in, out := hostileTree(t, tc.rel, tc.make), t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				done := make(chan error, 1)
				go func() {
					done <- Run(ctx, Options{Format: format, Name: "sys", Input: in, Output: out, BootFiles: boot})
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(30 * time.Second):
					t.Fatalf("%s: still running after 30s", format)
				}
				cancel()
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %v\nwant it to say %q", format, err, tc.want)
				} else if !strings.Contains(err.Error(), "and it comes from ") {
					t.Errorf("%s: error %v does not say where the file comes from", format, err)
				}
				assertOnly(t, out)
			}
		})
	}
}

// TestBootSymlinksInsideRoot: boot files that are symlinks within the
// root filesystem are read from where they lead there, an absolute
// target starting at the root filesystem's top (as the booted system
// sees it), never at the host's /.
func TestBootSymlinksInsideRoot(t *testing.T) {
	in := bootTree(t, "")
	os.MkdirAll(filepath.Join(in, "usr/lib/kernel"), 0o755)
	os.MkdirAll(filepath.Join(in, "etc"), 0o755)
	os.WriteFile(filepath.Join(in, "usr/lib/kernel/vmlinuz"), []byte("REAL KERNEL"), 0o644)
	// The tree's own /etc/resolv.conf, not the host's.
	os.WriteFile(filepath.Join(in, "etc/resolv.conf"), []byte("console=tty0"), 0o644)
	os.Remove(filepath.Join(in, "boot/kernel"))
	os.Remove(filepath.Join(in, "boot/cmdline"))
	os.Symlink("/usr/lib/kernel/vmlinuz", filepath.Join(in, "boot/kernel"))
	os.Symlink("../etc/resolv.conf", filepath.Join(in, "boot/cmdline"))
	out := t.TempDir()
	if err := Run(context.Background(), Options{Format: "kernel+initrd", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	k, _ := os.ReadFile(filepath.Join(out, "sys-kernel"))
	c, _ := os.ReadFile(filepath.Join(out, "sys-cmdline"))
	if string(k) != "REAL KERNEL" || string(c) != "console=tty0" {
		t.Errorf("kernel %q cmdline %q, want the files the links lead to in the tree", k, c)
	}

	// iso-bios boots /boot/kernel by name: the ISO holds the file itself.
	out = t.TempDir()
	if err := Run(context.Background(), Options{Format: "iso-bios", Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)}); err != nil {
		t.Fatal(err)
	}
	x := extractISO(t, filepath.Join(out, "sys.iso"))
	fi, err := os.Lstat(filepath.Join(x, "boot/kernel"))
	got, _ := os.ReadFile(filepath.Join(x, "boot/kernel"))
	if err != nil || !fi.Mode().IsRegular() || string(got) != "REAL KERNEL" {
		t.Errorf("iso-bios /boot/kernel: %v, %q; want a regular file holding the kernel the link leads to", err, got)
	}
}

// TestGzipKernelBomb: a gzip kernel (arm64's Image.gz) is decompressed
// for the UKI formats up to KernelFile.Max bytes, not without end.
func TestGzipKernelBomb(t *testing.T) {
	defer func(old int64) { KernelFile.Max = old }(KernelFile.Max)
	KernelFile.Max = 1 << 20
	in, out := bootTree(t, ""), t.TempDir()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(make([]byte, 2<<20))
	zw.Close()
	os.WriteFile(filepath.Join(in, "boot/kernel"), z.Bytes(), 0o644)
	err := Run(context.Background(), Options{Format: "uki", Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)})
	if err == nil || !strings.Contains(err.Error(), "decompresses to more than the 1048576 bytes allowed") {
		t.Errorf("error %v, want the decompression limit", err)
	}
	assertOnly(t, out)
}

// TestRunCancelled: a cancelled context stops a writer at its next write
// and leaves nothing behind.
func TestRunCancelled(t *testing.T) {
	in, out := bootTree(t, ""), t.TempDir()
	for i := 0; i < 64; i++ {
		os.WriteFile(filepath.Join(in, "f"+strings.Repeat("x", i)), make([]byte, 1<<20), 0o644)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, format := range FormatNames() {
		err := Run(ctx, Options{Format: format, Name: "sys", Input: in, Output: out, BootFiles: fakeBootFiles(t)})
		if err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("%s: error %v, want context canceled", format, err)
		}
		assertOnly(t, out)
	}
}

// TestTarKernelInitrdSymlinks: tar-kernel-initrd reads its boot files the
// same way.
func TestTarKernelInitrdSymlinks(t *testing.T) {
	in := bootTree(t, "")
	os.WriteFile(filepath.Join(in, "boot/real-ucode"), []byte("UCODE"), 0o644)
	os.Symlink("real-ucode", filepath.Join(in, "boot/ucode.cpio"))
	out := t.TempDir()
	if err := Run(context.Background(), Options{Format: "tar-kernel-initrd", Name: "sys", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, "sys-initrd.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	tr := tar.NewReader(f)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	if got["ucode.cpio"] != "UCODE" || got["kernel"] != "KERNEL IMAGE" {
		t.Errorf("tar holds %q", got)
	}
}
