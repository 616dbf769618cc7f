package erofs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// TestRoundTrip writes a tree and reads it back with erofs-utils:
// fsck.erofs checks the image and extracts it (as root with owners), and
// every entry must come back as written.
func TestRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("fsck.erofs"); err != nil {
		t.Skip("fsck.erofs not installed (apt package erofs-utils; make env installs it)")
	}
	root := treetest.Build(t)
	big := make([]byte, 3*blockSize+100)
	for i := range big {
		big[i] = byte(i * 13)
	}
	os.WriteFile(filepath.Join(root, "bin/big"), big, 0o644)
	os.WriteFile(filepath.Join(root, "bin/inline-max"), bytes.Repeat([]byte("i"), inlineMax), 0o644)
	os.MkdirAll(filepath.Join(root, "wide"), 0o755)
	for i := 0; i < 700; i++ { // a directory of several blocks
		os.WriteFile(filepath.Join(root, "wide", fmt.Sprintf("%s-%03d", strings.Repeat("w", i%40), i)), []byte{byte(i)}, 0o644)
	}
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	treetest.ClampTimes(entries)
	img := writeImage(t, root, entries)

	out := filepath.Join(t.TempDir(), "x")
	if msg, err := exec.Command("fsck.erofs", "--extract="+out, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, msg)
	}
	got, err := fstree.Walk(out, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// fsck.erofs sets the mode before the owner, which clears setuid bits
	// on extraction: compare without them, and read su's mode from its
	// inode, located by dump.erofs.
	want := treetest.Describe(t, root, treetest.WithoutDevices(entries))
	want = strings.Replace(want, "usr/bin/su urwxr-xr-x", "usr/bin/su -rwxr-xr-x", 1)
	dump, err := exec.Command("dump.erofs", "--path=/usr/bin/su", img).CombinedOutput()
	m := regexp.MustCompile(`NID: (\d+)`).FindSubmatch(dump)
	if err != nil || m == nil {
		t.Fatalf("dump.erofs: %v\n%s", err, dump)
	}
	nid, _ := strconv.Atoi(string(m[1]))
	raw, _ := os.ReadFile(img)
	if mode := binary.LittleEndian.Uint16(raw[nid*slotSize+4:]); mode != 0o104755 {
		t.Errorf("usr/bin/su inode mode %o, want 104755", mode)
	}
	if have := treetest.Describe(t, out, treetest.WithoutDevices(got)); have != want {
		t.Errorf("tree read back by fsck.erofs differs:\n%s", treetest.DiffLines(want, have))
	}
	if b, _ := os.ReadFile(filepath.Join(out, "bin/big")); !bytes.Equal(b, big) {
		t.Error("bin/big: contents differ")
	}
	for _, e := range got {
		if e.Path == "dev/console" && (fstree.Major(e.Rdev) != 5 || fstree.Minor(e.Rdev) != 1) {
			t.Errorf("dev/console extracted as %d,%d, want 5,1", fstree.Major(e.Rdev), fstree.Minor(e.Rdev))
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := treetest.WriteTwice(t, writeImage)
	if len(a)%blockSize != 0 {
		t.Errorf("image of %d bytes is not whole blocks", len(a))
	}
}
