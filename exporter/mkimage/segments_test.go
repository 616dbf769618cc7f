package mkimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/internal/initramfs"
	"golang.org/x/sys/unix"
)

// treeEnt is one entry of a test tree: a directory (trailing /), a
// symlink ("-> target"), a hard link ("=> first path") or a file.
type treeEnt struct {
	path  string
	mode  os.FileMode
	mtime int64
	what  string
}

// mkTree creates the entries of ents for which keep is true, and gives
// directories their times last, as a layer's tree has them.
func mkTree(t *testing.T, root string, ents []treeEnt, keep func(p string) bool) {
	t.Helper()
	var dirs []treeEnt
	for _, e := range ents {
		if !keep(e.path) {
			continue
		}
		p := filepath.Join(root, strings.TrimSuffix(e.path, "/"))
		var err error
		switch {
		case strings.HasSuffix(e.path, "/"):
			err = os.Mkdir(p, e.mode)
			if err == nil {
				err = os.Chmod(p, e.mode)
			}
			dirs = append(dirs, e)
		case strings.HasPrefix(e.what, "-> "):
			err = os.Symlink(strings.TrimPrefix(e.what, "-> "), p)
		case strings.HasPrefix(e.what, "=> "):
			err = os.Link(filepath.Join(root, strings.TrimPrefix(e.what, "=> ")), p)
		default:
			err = os.WriteFile(p, []byte(e.what), e.mode)
			if err == nil {
				err = os.Chmod(p, e.mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(e.path, "/") && !strings.HasPrefix(e.what, "=> ") {
			mt := time.Unix(e.mtime, 0)
			if err := lchtimes(p, mt); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		mt := time.Unix(dirs[i].mtime, 0)
		if err := os.Chtimes(filepath.Join(root, dirs[i].path), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// The root's time is the tree's too: left to the clock, two trees
	// made a second apart would differ in it.
	rt := time.Unix(50, 0)
	if err := os.Chtimes(root, rt, rt); err != nil {
		t.Fatal(err)
	}
}

// segTree is a root filesystem as lkbuild lays it out: kernel and init
// entries, and bundles and a volume under containers/, whose shared
// ancestors every bundle writes alike.
var segTree = []treeEnt{
	{"boot/", 0o755, 100, ""},
	{"boot/kernel", 0o644, 100, "KERNEL"},
	{"boot/cmdline", 0o644, 100, "console=ttyS0"},
	{"etc/", 0o755, 200, ""},
	{"etc/passwd", 0o644, 3000, "root:x:0:0"},
	{"etc/shadow", 0o600, 50, "root:*"},
	{"etc/mtab", 0o777, 60, "-> /proc/mounts"},
	{"usr/", 0o755, 70, ""},
	{"usr/lib/", 0o700, 80, ""},
	{"usr/lib/modules/", 0o755, 90, ""},
	{"usr/lib/modules/m.ko", 0o644, 91, "module"},
	{"lib", 0o777, 92, "-> usr/lib"},
	{"bin/", 0o755, 93, ""},
	{"bin/busybox", 0o4755, 94, "BUSYBOX"},
	{"bin/sh", 0, 0, "=> bin/busybox"},
	{"bin/ls", 0, 0, "=> bin/busybox"},
	{"empty", 0o644, 95, ""},
	{"containers/", 0o755, 1000, ""},
	{"containers/onboot/", 0o755, 1000, ""},
	{"containers/onboot/000-a/", 0o755, 1000, ""},
	{"containers/onboot/000-a/config.json", 0o644, 1000, "{}"},
	{"containers/onboot/000-a/lower/", 0o755, 1001, ""},
	{"containers/onboot/000-a/lower/bin/", 0o755, 1002, ""},
	{"containers/onboot/000-a/lower/bin/busybox", 0o755, 1003, "BUSYBOX"},
	{"containers/onboot/000-a/lower/bin/sh", 0, 0, "=> containers/onboot/000-a/lower/bin/busybox"},
	{"containers/onboot/000-a/lower/lib", 0o777, 1004, "-> /usr/lib"},
	{"containers/onboot/000-a/tmp/", 0o755, 1000, ""},
	{"containers/onboot/000-a/rootfs/", 0o755, 1000, ""},
	{"containers/services/", 0o755, 1000, ""},
	{"containers/services/b/", 0o755, 1000, ""},
	{"containers/services/b/config.json", 0o644, 1000, "{\"b\":1}"},
	{"containers/services/b/rootfs/", 0o700, 1005, ""},
	{"containers/services/b/rootfs/data", 0o600, 5000, "secret"},
	{"containers/services/b/rootfs/same", 0, 0, "=> containers/services/b/rootfs/data"},
	{"containers/volumes/", 0o755, 1000, ""},
	{"containers/volumes/v/", 0o755, 1000, ""},
	{"containers/volumes/v/lower/", 0o755, 1000, ""},
	{"containers/volumes/v/merged/", 0o755, 1000, ""},
}

// TestSegmentedInitrdUnpacksLikeTree writes the tree's initrd whole and as
// segments (one per bundle and volume, then the base), unpacks both with
// the kernel's rules and compares them, entry by entry, with the tree.
func TestSegmentedInitrdUnpacksLikeTree(t *testing.T) {
	epoch := time.Unix(4000, 0).UTC()
	// An init image's containers/ (directories only), whose own mode and
	// time the bundles' containers/ overrides in the merged tree.
	initContainers := []treeEnt{{"containers/", 0o700, 5, ""}, {"containers/onshutdown/", 0o750, 6, ""}}
	// files entries (etc/passwd and opt/app/cfg), which the base written
	// without them lacks, with etc/ at its time before they were written.
	filesEnts := []treeEnt{{"opt/", 0o700, 300, ""}, {"opt/app/", 0o755, 301, ""}, {"opt/app/cfg", 0o600, 302, "cfg"}}
	for _, tc := range []struct {
		name       string
		epoch      *time.Time
		initCont   bool
		filesSplit bool
	}{{"no epoch", nil, false, false}, {"epoch", &epoch, false, false}, {"init containers", nil, true, false}, {"files apart", &epoch, true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ep := tc.epoch
			all, baseEnts := segTree, segTree
			if tc.initCont {
				all = append(slices.Clone(segTree), initContainers[1])
				baseEnts = append(slices.Clone(segTree), initContainers...)
			}
			if tc.filesSplit {
				all = append(slices.Clone(all), filesEnts...)
			}
			full := t.TempDir()
			mkTree(t, full, all, func(string) bool { return true })
			base := t.TempDir()
			mkTree(t, base, baseEnts, func(p string) bool { return !strings.HasPrefix(p, "containers") })
			if tc.initCont {
				mkTree(t, base, initContainers, func(string) bool { return true })
			}
			var segs []string
			run := func(format, in string) {
				t.Helper()
				out := t.TempDir()
				if err := Run(ctx, Options{Format: format, Name: "seg", Input: in, Output: out, Epoch: ep}); err != nil {
					t.Fatal(err)
				}
				segs = append(segs, filepath.Join(out, SegmentFile))
			}
			baseFormat := BaseSegmentFormat
			if tc.initCont {
				run(ContainersSegmentFormat, base)
				baseFormat = BaseSplitSegmentFormat
			}
			for _, b := range []string{"containers/onboot/000-a", "containers/services/b", "containers/volumes/v"} {
				in := t.TempDir()
				mkTree(t, in, segTree, func(p string) bool {
					return strings.HasPrefix(b, strings.TrimSuffix(p, "/")) || strings.HasPrefix(p, b+"/")
				})
				run(SegmentFormat, in)
			}
			if tc.filesSplit {
				// the base without the files, then the files from the
				// whole base
				noFiles := t.TempDir()
				var ents []treeEnt
				for _, e := range baseEnts {
					switch e.path {
					case "etc/passwd":
						continue
					case "etc/":
						e.mtime = 150
					}
					ents = append(ents, e)
				}
				mkTree(t, noFiles, ents, func(p string) bool { return !strings.HasPrefix(p, "containers") })
				if tc.initCont {
					mkTree(t, noFiles, initContainers, func(string) bool { return true })
				}
				run(baseFormat, noFiles)
				mkTree(t, base, filesEnts, func(string) bool { return true })
				out := t.TempDir()
				if err := Run(ctx, Options{Format: FilesSegmentFormat, Name: "seg", Input: base, Output: out, Epoch: ep,
					SegmentPaths: []string{"/etc/passwd", "opt/app/cfg"}}); err != nil {
					t.Fatal(err)
				}
				segs = append(segs, filepath.Join(out, SegmentFile))
			} else {
				run(baseFormat, base)
			}

			mono, seg := t.TempDir(), t.TempDir()
			if err := Run(ctx, Options{Format: "kernel+initrd", Name: "sys", Input: full, Output: mono, Epoch: ep}); err != nil {
				t.Fatal(err)
			}
			if err := Run(ctx, Options{Format: "kernel+initrd", Name: "sys", Input: base, Output: seg, Epoch: ep, InitrdSegments: segs}); err != nil {
				t.Fatal(err)
			}
			var clamp *int64
			if ep != nil {
				s := ep.Unix()
				clamp = &s
			}
			want, err := initramfs.FromDir(full, initrd.SkipBoot, clamp)
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range []string{mono, seg} {
				f, err := os.Open(filepath.Join(dir, "sys-initrd.img"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := initramfs.Unpack(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Errors) > 0 {
					t.Errorf("%s: the kernel would fail on %q", filepath.Base(dir), got.Errors)
				}
				if d := initramfs.Diff(want, got); len(d) > 0 {
					t.Errorf("initrd unpacks to another tree than the tree:\n%s", strings.Join(d, "\n"))
				}
				for _, n := range []string{"sys-kernel", "sys-cmdline"} {
					a, _ := os.ReadFile(filepath.Join(mono, n))
					b, _ := os.ReadFile(filepath.Join(dir, n))
					if !bytes.Equal(a, b) || len(a) == 0 {
						t.Errorf("%s differs", n)
					}
				}
			}
		})
	}
}

// TestSegmentChecks: the segment writers refuse trees whose paths would
// overlap another segment's, and segments are refused by formats that do
// not embed the initrd.
func TestSegmentChecks(t *testing.T) {
	ctx := context.Background()
	in := t.TempDir()
	os.MkdirAll(filepath.Join(in, "containers/services/x"), 0o755)
	os.WriteFile(filepath.Join(in, "etc"), nil, 0o644)
	if err := Run(ctx, Options{Format: SegmentFormat, Name: "s", Input: in, Output: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "/etc") {
		t.Errorf("a bundle's segment with /etc: %v", err)
	}
	if err := Run(ctx, Options{Format: BaseSegmentFormat, Name: "s", Input: in, Output: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "/containers") {
		t.Errorf("a base segment with /containers: %v", err)
	}
	os.WriteFile(filepath.Join(in, "containers/services/f"), nil, 0o644)
	for _, f := range []string{BaseSplitSegmentFormat, ContainersSegmentFormat} {
		if err := Run(ctx, Options{Format: f, Name: "s", Input: in, Output: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "/containers/services/f") {
			t.Errorf("%s with a file in /containers: %v", f, err)
		}
	}
	for _, p := range []string{"containers/services/x", "boot/kernel", "nothing"} {
		if err := Run(ctx, Options{Format: FilesSegmentFormat, Name: "s", Input: in, Output: t.TempDir(), SegmentPaths: []string{p}}); err == nil {
			t.Errorf("files segment with %s: no error", p)
		}
	}
	if err := Run(ctx, Options{Format: "kernel+squashfs", Name: "s", Input: in, Output: t.TempDir(), InitrdSegments: []string{"x"}}); err == nil {
		t.Error("kernel+squashfs accepted initrd segments")
	}
	for _, f := range []string{"kernel+initrd", "uki", "raw-bios", "gcp", "iso-efi-initrd"} {
		if !EmbedsInitrd(f) {
			t.Errorf("EmbedsInitrd(%s) = false", f)
		}
	}
	for _, f := range []string{"kernel+iso", "iso-bios", "iso-efi", "kernel+squashfs", "kernel+erofs", SegmentFormat} {
		if EmbedsInitrd(f) {
			t.Errorf("EmbedsInitrd(%s) = true", f)
		}
	}
}

// lchtimes sets p's times without following a symlink.
func lchtimes(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
