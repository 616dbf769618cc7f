package frontend_test

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/exporter/fstree"
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// TestFilesystemImagesMatchTar builds rootfs.yml (merged with
// rootfs-extra.yml) to the tar target and to kernel+squashfs and
// kernel+erofs, mounts each image with the kernel's own squashfs and erofs
// drivers (loop, read-only) and compares every entry outside boot/ with
// the tar: type, permissions (special bits included), owner, size, link
// target, device numbers and contents.
func TestFilesystemImagesMatchTar(t *testing.T) {
	env := testenv.Integration(t)
	dir := filepath.Join(env.Root, "frontend/testdata")
	opts := func(target, out string) cli.BuildOptions {
		return cli.BuildOptions{File: filepath.Join(dir, "rootfs.yml"), Merge: []string{filepath.Join(dir, "rootfs-extra.yml")},
			Context: dir, Target: target, Output: out, BuildArgs: []string{"SOURCE_DATE_EPOCH=0"}}
	}
	tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
	build(t, env, opts("tar", "type=tar,dest="+tarFile))
	want := tarManifest(t, tarFile)
	if len(want) < 50 {
		t.Fatalf("only %d entries in the tar", len(want))
	}
	for _, tc := range []struct{ target, file, fstype string }{
		{"kernel+squashfs", "rootfs-squashfs.img", "squashfs"},
		{"kernel+erofs", "rootfs-erofs.img", "erofs"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			out := build(t, env, opts(tc.target, ""))
			for _, f := range []string{"rootfs-kernel", "rootfs-cmdline"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("%s missing: %v", f, err)
				}
			}
			mnt := mountImage(t, filepath.Join(out, tc.file), tc.fstype)
			got := treeManifest(t, mnt)
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
				t.Errorf("%s mounted differs from the tar target (%d vs %d entries):\n%s", tc.file, len(got), len(want), firstDiffs(want, got))
			}
			t.Logf("%s: %d entries identical to the tar target", tc.file, len(got))
		})
	}
}

func mountImage(t *testing.T, img, fstype string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", fstype, "-o", "loop,ro", img, mnt).CombinedOutput(); err != nil {
		if testenv.Required() {
			t.Fatalf("mount -t %s: %v %s (the test needs root and loop devices)", fstype, err, out)
		}
		t.Skipf("cannot mount here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

func manifestLine(p, typ string, perm uint32, uid, gid int, size int64, extra string) string {
	return fmt.Sprintf("%s %s %04o %d:%d %d %s", p, typ, perm, uid, gid, size, extra)
}

// tarManifest describes every entry of the tar outside boot/.
func tarManifest(t *testing.T, file string) []string {
	t.Helper()
	var lines []string
	links := map[string]string{}
	eachTarEntry(t, file, func(h *tar.Header, r io.Reader) {
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if p == "" || p == "." || p == "boot" || strings.HasPrefix(p, "boot/") {
			return
		}
		perm := uint32(h.Mode & 0o7777)
		switch h.Typeflag {
		case tar.TypeDir:
			lines = append(lines, manifestLine(p, "dir", perm, h.Uid, h.Gid, 0, ""))
		case tar.TypeReg:
			sum := sha256.New()
			io.Copy(sum, r)
			links[p] = fmt.Sprintf("%x", sum.Sum(nil))
			lines = append(lines, manifestLine(p, "file", perm, h.Uid, h.Gid, h.Size, links[p]))
		case tar.TypeLink:
			target := strings.TrimPrefix(h.Linkname, "./")
			lines = append(lines, manifestLine(p, "file", perm, h.Uid, h.Gid, -1, links[target]))
		case tar.TypeSymlink:
			lines = append(lines, manifestLine(p, "symlink", 0o777, h.Uid, h.Gid, 0, h.Linkname))
		case tar.TypeChar, tar.TypeBlock:
			typ := map[byte]string{tar.TypeChar: "chr", tar.TypeBlock: "blk"}[h.Typeflag]
			lines = append(lines, manifestLine(p, typ, perm, h.Uid, h.Gid, 0, fmt.Sprintf("%d,%d", h.Devmajor, h.Devminor)))
		case tar.TypeFifo:
			lines = append(lines, manifestLine(p, "fifo", perm, h.Uid, h.Gid, 0, ""))
		default:
			t.Errorf("%s: unexpected tar type %q", p, h.Typeflag)
		}
	})
	sort.Strings(lines)
	return lines
}

// treeManifest describes a mounted tree like tarManifest (hard-linked
// files get size -1 after the first, as tar records them).
func treeManifest(t *testing.T, root string) []string {
	t.Helper()
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		perm := fstree.PermBits(e.Mode)
		uid, gid := int(e.UID), int(e.GID)
		switch {
		case e.Mode.IsDir():
			lines = append(lines, manifestLine(e.Path, "dir", perm, uid, gid, 0, ""))
		case e.Mode.IsRegular():
			f, err := os.Open(filepath.Join(root, e.Path))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.New()
			io.Copy(sum, f)
			f.Close()
			size := e.Size
			if e.LinkGroup != 0 && !e.FirstLink {
				size = -1
			}
			lines = append(lines, manifestLine(e.Path, "file", perm, uid, gid, size, fmt.Sprintf("%x", sum.Sum(nil))))
		case e.Mode&fs.ModeSymlink != 0:
			lines = append(lines, manifestLine(e.Path, "symlink", 0o777, uid, gid, 0, e.Linkname))
		case e.Mode&fs.ModeDevice != 0:
			typ := "blk"
			if e.Mode&fs.ModeCharDevice != 0 {
				typ = "chr"
			}
			lines = append(lines, manifestLine(e.Path, typ, perm, uid, gid, 0, fmt.Sprintf("%d,%d", fstree.Major(e.Rdev), fstree.Minor(e.Rdev))))
		case e.Mode&fs.ModeNamedPipe != 0:
			lines = append(lines, manifestLine(e.Path, "fifo", perm, uid, gid, 0, ""))
		default:
			t.Errorf("%s: unexpected mode %v", e.Path, e.Mode)
		}
	}
	sort.Strings(lines)
	return lines
}

func firstDiffs(want, got []string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		g[l] = true
	}
	var out []string
	for _, l := range want {
		if !g[l] && len(out) < 20 {
			out = append(out, "- "+l)
		}
	}
	for _, l := range got {
		if !w[l] && len(out) < 40 {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestImageFormatsReproducible builds the targets that hack/boottest does
// not boot (those with a NoBootTest reason in package formats) twice, the
// second time without the cache, with the same SOURCE_DATE_EPOCH, and
// compares every file; the tree targets (tar, docker) are exported as tar
// files (LinuxKit's tar output). (The booted formats are compared in
// hack/boottest's TestBootFormats, kernel+initrd in TestReproducible.)
func TestImageFormatsReproducible(t *testing.T) {
	env := testenv.Integration(t)
	dir := filepath.Join(env.Root, "frontend/testdata")
	for _, tg := range formats.All() {
		if tg.NoBootTest == "" {
			continue
		}
		target := tg.Name
		t.Run(target, func(t *testing.T) {
			sums := [2]map[string]string{}
			for i, noCache := range []bool{false, true} {
				o := cli.BuildOptions{File: filepath.Join(dir, "rootfs.yml"), Context: dir, Target: target,
					NoCache: noCache, BuildArgs: []string{"SOURCE_DATE_EPOCH=1700000000"}}
				if tg.Tree {
					tarDir := t.TempDir()
					o.Output = "type=tar,dest=" + filepath.Join(tarDir, "rootfs.tar")
					build(t, env, o)
					sums[i] = dirSums(t, tarDir)
					continue
				}
				sums[i] = dirSums(t, build(t, env, o))
			}
			if len(sums[0]) == 0 || fmt.Sprint(sums[0]) != fmt.Sprint(sums[1]) {
				t.Errorf("builds differ:\n%v\n%v", sums[0], sums[1])
			}
		})
	}
}

func dirSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		out[e.Name()] = fmt.Sprintf("%x", h.Sum(nil))[:16]
	}
	return out
}
