package squashfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
	"github.com/lkbuild/lkbuild/exporter/internal/treetest"
)

func writeImage(t *testing.T, root string, entries []fstree.Entry) string {
	t.Helper()
	return treetest.WriteImage(t, func(f *os.File) error {
		return Write(f, root, entries, Options{ModTime: time.Unix(1700000000, 0)})
	})
}

// TestRoundTrip writes a tree and reads it back with squashfs-tools:
// unsquashfs extracts it (as root it restores owners and modes) and lists
// it, and every entry must come back as written.
func TestRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs not installed (apt package squashfs-tools; make env installs it)")
	}
	root := treetest.Build(t)
	// A file of several blocks, some of them zero (sparse), and a
	// directory with more entries than one listing header holds.
	big := make([]byte, 5*blockSize+100)
	for i := range big[:blockSize] {
		big[i] = byte(i * 7)
	}
	copy(big[4*blockSize:], "tail")
	os.WriteFile(filepath.Join(root, "bin/big"), big, 0o644)
	os.MkdirAll(filepath.Join(root, "wide"), 0o755)
	for i := 0; i < 700; i++ {
		os.WriteFile(filepath.Join(root, "wide", strings.Repeat("w", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644)
	}
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	treetest.ClampTimes(entries)
	img := writeImage(t, root, entries)

	out := filepath.Join(t.TempDir(), "x")
	if msg, err := exec.Command("unsquashfs", "-no-progress", "-d", out, img).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, msg)
	}
	got, err := fstree.Walk(out, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := treetest.Describe(t, root, treetest.WithoutDevices(entries))
	if have := treetest.Describe(t, out, treetest.WithoutDevices(got)); have != want {
		t.Errorf("tree read back by unsquashfs differs:\n%s", treetest.DiffLines(want, have))
	}
	groups := map[string]int{}
	for _, e := range got {
		groups[e.Path] = e.LinkGroup
	}
	if groups["bin/busybox"] == 0 || groups["bin/busybox"] != groups["bin/hardlink"] {
		t.Error("bin/hardlink did not come back as a hard link of bin/busybox")
	}
	if b, _ := os.ReadFile(filepath.Join(out, "bin/big")); !bytes.Equal(b, big) {
		t.Error("bin/big: contents differ")
	}

	// The listing shows what extraction may not: symlink owners, device
	// numbers, hard links (one inode).
	list, err := exec.Command("unsquashfs", "-lln", "-no-progress", img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v\n%s", err, list)
	}
	for _, re := range []string{
		`(?m)^lrwxrwxrwx 7/8 +\d+ [-0-9: ]+ squashfs-root/etc/rel -> \.\./bin/busybox$`,
		`(?m)^crw------- 0/0 +5, +1 [-0-9: ]+ squashfs-root/dev/console$`,
		`(?m)^brw-r----- 0/0 +8, +0 [-0-9: ]+ squashfs-root/dev/sda$`,
		`(?m)^-rwsr-xr-x 0/0 +2 [-0-9: ]+ squashfs-root/usr/bin/su$`,
	} {
		if os.Geteuid() != 0 && strings.Contains(re, "dev/") {
			continue
		}
		if !regexp.MustCompile(re).Match(list) {
			t.Errorf("listing lacks %s", re)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := treetest.WriteTwice(t, writeImage)
	if len(a)%4096 != 0 {
		t.Errorf("image of %d bytes is not padded to 4 KiB", len(a))
	}
}

// TestChangedFile: a file that no longer has the size walked fails the
// write with its path, whichever block the pipeline is at.
func TestChangedFile(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a"), make([]byte, 3*blockSize), 0o644)
	os.WriteFile(filepath.Join(root, "b"), []byte("short"), 0o644)
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		if entries[i].Path == "b" {
			entries[i].Size = 2 * blockSize
		}
	}
	f, _ := os.Create(filepath.Join(t.TempDir(), "img"))
	defer f.Close()
	err = Write(f, root, entries, Options{})
	if err == nil || !strings.Contains(err.Error(), "b: read") {
		t.Errorf("error %v, want one naming b", err)
	}
}

// TestDuplicateContents: two files with the same contents (not hard
// links) are stored once, and both read back, also when the duplicate is
// the last file written.
func TestDuplicateContents(t *testing.T) {
	root := t.TempDir()
	data := make([]byte, 3*blockSize+7)
	for i := range data {
		data[i] = byte(i*31 + i/1000)
	}
	os.WriteFile(filepath.Join(root, "a"), data, 0o644)
	os.WriteFile(filepath.Join(root, "b"), []byte("different"), 0o644)
	os.WriteFile(filepath.Join(root, "z"), data, 0o644)
	entries, _ := fstree.Walk(root, fstree.Options{})
	img := writeImage(t, root, entries)
	fi, _ := os.Stat(img)

	os.Remove(filepath.Join(root, "z"))
	entries, _ = fstree.Walk(root, fstree.Options{})
	single, _ := os.Stat(writeImage(t, root, entries))
	if fi.Size() != single.Size() {
		t.Errorf("image with a duplicate is %d bytes, without it %d: the copy was stored again", fi.Size(), single.Size())
	}
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs not installed")
	}
	out := filepath.Join(t.TempDir(), "x")
	if msg, err := exec.Command("unsquashfs", "-no-progress", "-d", out, img).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, msg)
	}
	for _, name := range []string{"a", "z"} {
		if b, _ := os.ReadFile(filepath.Join(out, name)); !bytes.Equal(b, data) {
			t.Errorf("%s: contents differ", name)
		}
	}
}
