// Package treetest builds and compares file trees for the exporter tests.
package treetest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
	"github.com/lkbuild/lkbuild/internal/golden"
)

// Epoch is the time ClampTimes gives every entry.
var Epoch = time.Unix(1700000000, 0)

// Build makes a tree exercising every Rock Ridge feature: owners,
// special permission bits, symlinks (absolute, relative, long), device
// nodes and a fifo (when running as root), hard links, long and clashing
// names, and a directory spanning several sectors.
func Build(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mk := func(p string, data string, mode os.FileMode) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, mode)
	}
	mk("bin/busybox", strings.Repeat("B", 5000), 0o755)
	mk("etc/hostname", "linuxkit\n", 0o644)
	mk("etc/shadow", "root:*:1::::::\n", 0o600)
	mk("usr/bin/su", "su", os.ModeSetuid|0o755)
	mk("empty", "", 0o644)
	mk("a-very-long-file-name-that-iso9660-cannot-hold-in-thirty-characters.conf", "long", 0o644)
	mk("Mixed.Case.Name.tar.gz", "x", 0o644)
	mk("mixed.case.name.tar.gz", "y", 0o644)
	mk(strings.Repeat("n", 255), "max name", 0o644)
	for i := 0; i < 120; i++ { // several sectors of records
		mk(fmt.Sprintf("many/file-%03d.txt", i), fmt.Sprint(i), 0o644)
	}
	os.Symlink("/bin/busybox", filepath.Join(root, "bin/sh"))
	os.Symlink("../bin/busybox", filepath.Join(root, "etc/rel"))
	os.Symlink("/proc/mounts", filepath.Join(root, "etc/mtab"))
	os.Symlink(strings.Repeat("d/", 400)+"target", filepath.Join(root, "longlink"))
	os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "bin/hardlink"))
	os.MkdirAll(filepath.Join(root, "deep/a/b/c/d/e/f/g/h/i"), 0o755)
	mk("deep/a/b/c/d/e/f/g/h/i/leaf", "deep", 0o644)
	os.Chmod(filepath.Join(root, "many"), 0o750)
	if os.Geteuid() == 0 {
		os.Chown(filepath.Join(root, "etc/shadow"), 0, 42)
		os.Lchown(filepath.Join(root, "etc/rel"), 7, 8)
		os.Chown(filepath.Join(root, "many"), 1000, 1000)
		os.MkdirAll(filepath.Join(root, "dev"), 0o755)
		if err := syscall.Mknod(filepath.Join(root, "dev/console"), syscall.S_IFCHR|0o600, int(5<<8|1)); err != nil {
			t.Logf("mknod: %v (no device nodes in this test)", err)
		}
		syscall.Mknod(filepath.Join(root, "dev/sda"), syscall.S_IFBLK|0o660, int(8<<8|0))
		syscall.Mkfifo(filepath.Join(root, "dev/fifo"), 0o644)
	}
	return root
}

// Describe renders entries one per line for comparison: path, mode,
// owner (not for symlinks, whose owner and time extraction tools do not
// restore), size and first bytes of contents, link target, device numbers,
// and the time when it is not Epoch.
func Describe(t *testing.T, root string, entries []fstree.Entry) string {
	t.Helper()
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %v", e.Path, e.Mode)
		if e.Mode&os.ModeSymlink != 0 {
			// osirrox does not restore a symlink's owner or time; the
			// listing test checks them.
			fmt.Fprintf(&b, " -> %s\n", e.Linkname)
			continue
		}
		fmt.Fprintf(&b, " %d:%d", e.UID, e.GID)
		switch {
		case e.Mode.IsRegular():
			data, err := os.ReadFile(filepath.Join(root, e.Path))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, " %d %x", len(data), data[:min(len(data), 16)])
		case e.Mode&os.ModeDevice != 0:
			fmt.Fprintf(&b, " dev %d,%d", fstree.Major(e.Rdev), fstree.Minor(e.Rdev))
		}
		if !e.ModTime.Equal(Epoch) {
			fmt.Fprintf(&b, " mtime %v", e.ModTime.UTC())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ClampTimes sets every entry's time to Epoch.
func ClampTimes(entries []fstree.Entry) {
	for i := range entries {
		entries[i].ModTime = Epoch
	}
}

// WithoutDevices drops device nodes.
func WithoutDevices(entries []fstree.Entry) []fstree.Entry {
	var out []fstree.Entry
	for _, e := range entries {
		if e.Mode&os.ModeDevice == 0 {
			out = append(out, e)
		}
	}
	return out
}

// DiffLines shows how description b differs from a (golden.Diff).
func DiffLines(a, b string) string { return golden.Diff(a, b) }

// WriteImage creates a file in a temporary directory, fills it with write
// (failing the test on error) and returns its path.
func WriteImage(t *testing.T, write func(f *os.File) error) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteTwice writes the tree of Build twice with writeImage (which returns
// the image's path), fails the test when the two images differ and
// returns the image.
func WriteTwice(t *testing.T, writeImage func(t *testing.T, root string, entries []fstree.Entry) string) []byte {
	t.Helper()
	root := Build(t)
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(writeImage(t, root, entries))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(writeImage(t, root, entries))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two writes of the same tree differ")
	}
	return a
}
