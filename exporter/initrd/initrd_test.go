package initrd

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/cpio"
	"github.com/lkbuild/lkbuild/exporter/fstree"
)

func mkTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "boot"), 0o755))
	must(os.WriteFile(filepath.Join(root, "boot/kernel"), []byte("KERNEL"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/b"), []byte("bee"), 0o600))
	must(os.WriteFile(filepath.Join(root, "etc/a"), []byte("ay"), 0o644))
	must(os.Link(filepath.Join(root, "etc/a"), filepath.Join(root, "etc/z-link")))
	must(os.Symlink("/proc/mounts", filepath.Join(root, "etc/mtab")))
	must(os.Mkdir(filepath.Join(root, "bin"), 0o755))
	return root
}

type entry struct {
	h    *cpio.Header
	data string
}

func readAll(t *testing.T, gz []byte) []entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	r := cpio.NewReader(zr)
	var out []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		out = append(out, entry{h, string(b)})
	}
}

func TestWrite(t *testing.T) {
	root := mkTree(t)
	if err := os.Chmod(root, 0o750); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1000, 0)
	var buf bytes.Buffer
	if err := Write(&buf, root, Options{Epoch: &epoch}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, buf.Bytes())
	var names []string
	byName := map[string]entry{}
	for _, e := range got {
		names = append(names, e.h.Name)
		byName[e.h.Name] = e
		if e.h.Mtime != 1000 {
			t.Errorf("%s: mtime %d not clamped to the epoch", e.h.Name, e.h.Mtime)
		}
	}
	// "." first: it gives the initramfs root the tree's mode (tmpfs's
	// default is 1777).
	want := []string{".", "bin", "etc", "etc/a", "etc/b", "etc/mtab", "etc/z-link"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v (boot/ must be left out)", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v", names, want)
		}
	}
	if e := byName["."]; e.h.Mode != fstree.TypeDir|0o750 {
		t.Errorf(". has mode %o, want the root's %o", e.h.Mode, fstree.TypeDir|0o750)
	}
	if e := byName["etc/b"]; e.data != "bee" || e.h.Mode != fstree.TypeFile|0o600 {
		t.Errorf("etc/b = %q mode %o", e.data, e.h.Mode)
	}
	if e := byName["etc/mtab"]; e.h.Linkname != "/proc/mounts" || e.h.Mode&fstree.TypeMask != fstree.TypeLink {
		t.Errorf("etc/mtab = %+v", e.h)
	}
	a, z := byName["etc/a"], byName["etc/z-link"]
	if a.h.Ino != z.h.Ino || a.h.NLink != 2 || z.h.NLink != 2 {
		t.Errorf("hardlinks do not share an inode: a=%+v z=%+v", a.h, z.h)
	}
	if a.data != "ay" || z.h.Size != 0 {
		t.Errorf("hardlink data: first %q, second size %d (want data once, with the first)", a.data, z.h.Size)
	}
}

func TestDeterministic(t *testing.T) {
	root := mkTree(t)
	epoch := time.Unix(1000, 0)
	var a, b bytes.Buffer
	if err := Write(&a, root, Options{Epoch: &epoch}); err != nil {
		t.Fatal(err)
	}
	// Touch a file: with the epoch set, the bytes must not change.
	if err := os.Chtimes(filepath.Join(root, "etc/b"), time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, root, Options{Epoch: &epoch}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of the same tree differ")
	}
}
