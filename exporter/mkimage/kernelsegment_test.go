package mkimage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/internal/initramfs"
)

// kernelMods is a kernel's modules tree: shared directories, hard links, a
// symlink, a directory of its own.
var kernelMods = []treeEnt{
	{"lib/", 0o755, 100, ""},
	{"lib/modules/", 0o755, 101, ""},
	{"lib/modules/6.1/", 0o755, 102, ""},
	{"lib/modules/6.1/modules.dep", 0o644, 103, "dep"},
	{"lib/modules/6.1/a.ko", 0o644, 104, "A-module"},
	{"lib/modules/6.1/b.ko", 0, 0, "=> lib/modules/6.1/a.ko"},
	{"lib/modules/6.1/build", 0o777, 105, "-> /usr/src/linux"},
	{"lib/firmware/", 0o700, 106, ""},
	{"lib/firmware/fw.bin", 0o600, 107, "firmware"},
}

// relocate moves the entries of ents under lib/ to usr/lib/, with usr/
// and usr/lib/ as llbgen's relocation creates them.
func relocate(ents []treeEnt) []treeEnt {
	out := []treeEnt{{"usr/", 0o755, 50, ""}, {"usr/lib/", 0o755, 50, ""}}
	for _, e := range ents[1:] {
		e.path = "usr/" + e.path
		e.what = strings.Replace(e.what, "=> lib/", "=> usr/lib/", 1)
		out = append(out, e)
	}
	return out
}

// withEnts returns ents with each of repl replacing the entry of the same
// path (of any type), or added at the end.
func withEnts(ents []treeEnt, repl ...treeEnt) []treeEnt {
	out := slices.Clone(ents)
	for _, r := range repl {
		i := slices.IndexFunc(out, func(e treeEnt) bool { return strings.TrimSuffix(e.path, "/") == strings.TrimSuffix(r.path, "/") })
		if i < 0 {
			out = append(out, r)
		} else {
			out[i] = r
		}
	}
	return out
}

// baseOf is a merged base tree: boot/, the init image's etc/ and what the
// kernel contributes (mods, as merged).
func baseOf(mods ...treeEnt) []treeEnt {
	return append([]treeEnt{
		{"boot/", 0o755, 100, ""},
		{"boot/kernel", 0o644, 100, "KERNEL"},
		{"boot/cmdline", 0o644, 100, "console=ttyS0"},
		{"etc/", 0o755, 200, ""},
		{"etc/passwd", 0o644, 201, "root:x:0:0"},
	}, mods...)
}

// TestKernelSegment writes the kernel's segment from its modules tree, a
// bundle's segment and the base's without the kernel's non-directories,
// and compares their concatenation, unpacked with the kernel's rules, with
// the merged tree; where the base holds something else than the kernel at
// one of the kernel's non-directories, the base's writer refuses.
func TestKernelSegment(t *testing.T) {
	epoch := time.Unix(250, 0).UTC()
	for _, tc := range []struct {
		name   string
		kernel []treeEnt // the kernel segment's tree
		base   []treeEnt // the merged base (kernel, init, files)
		err    string    // the base segment's error, if any
	}{
		{name: "the kernel alone", kernel: kernelMods, base: baseOf(kernelMods...)},
		{name: "shared directories get the merged tree's mode and time",
			kernel: kernelMods,
			base: baseOf(withEnts(kernelMods,
				treeEnt{"lib/", 0o700, 300, ""},                            // the init image's lib/
				treeEnt{"lib/libc.so", 0o755, 301, "libc"},                 // a file of the init image in it
				treeEnt{"lib/modules/", 0o750, 302, ""},                    // the init image has lib/modules too
				treeEnt{"lib/modules/6.1/", 0o711, 310, ""},                // a files entry written into it
				treeEnt{"lib/modules/6.1/x.conf", 0o600, 311, "options x"}, // that files entry
			)...)},
		{name: "stored through the init image's lib symlink",
			kernel: relocate(kernelMods),
			base: baseOf(append([]treeEnt{{"lib", 0o777, 400, "-> usr/lib"}}, withEnts(relocate(kernelMods),
				treeEnt{"usr/", 0o755, 401, ""},
				treeEnt{"usr/lib/", 0o755, 402, ""},
				treeEnt{"usr/lib/libc.so", 0o755, 403, "libc"},
			)...)...)},
		{name: "the kernel's tree not stored through the init image's lib symlink",
			kernel: kernelMods,
			base:   baseOf(append([]treeEnt{{"lib", 0o777, 400, "-> usr/lib"}}, relocate(kernelMods)...)...),
			err:    "the base's /lib is not a directory"},
		{name: "a file of the init image over the kernel's",
			kernel: kernelMods, base: baseOf(withEnts(kernelMods, treeEnt{"lib/modules/6.1/modules.dep", 0o644, 500, "other dep"})...),
			err: "/lib/modules/6.1/modules.dep is not the kernel's"},
		{name: "a file of the init image over the kernel's hard link",
			kernel: kernelMods, base: baseOf(withEnts(kernelMods, treeEnt{"lib/modules/6.1/b.ko", 0o644, 104, "B-module-2"})...),
			err: "/lib/modules/6.1/b.ko is not the kernel's"},
		{name: "a directory over the kernel's file",
			kernel: kernelMods, base: baseOf(withEnts(kernelMods, treeEnt{"lib/firmware/fw.bin/", 0o755, 107, ""})...),
			err: "/lib/firmware/fw.bin is not the kernel's"},
		{name: "a symlink over the kernel's symlink",
			kernel: kernelMods, base: baseOf(withEnts(kernelMods, treeEnt{"lib/modules/6.1/build", 0o777, 105, "-> /elsewhere"})...),
			err: "/lib/modules/6.1/build is not the kernel's"},
	} {
		for _, ep := range []*time.Time{nil, &epoch} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				bundle := func(p string) bool {
					const b = "containers/services/b"
					return strings.HasPrefix(b, strings.TrimSuffix(p, "/")) || strings.HasPrefix(p, b+"/")
				}
				kdir, bdir, cdir, full := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
				all := func(string) bool { return true }
				mkTree(t, kdir, tc.kernel, all)
				mkTree(t, bdir, tc.base, all)
				mkTree(t, cdir, segTree, bundle)
				mkTree(t, full, tc.base, all)
				mkTree(t, full, segTree, bundle)
				seg := func(o Options) string {
					t.Helper()
					o.Name, o.Output, o.Epoch = "seg", t.TempDir(), ep
					if err := Run(ctx, o); err != nil {
						if tc.err != "" && strings.Contains(err.Error(), tc.err) {
							return ""
						}
						t.Fatalf("%s: %v", o.Format, err)
					}
					return filepath.Join(o.Output, SegmentFile)
				}
				segs := []string{
					seg(Options{Format: KernelSegmentFormat, Input: kdir}),
					seg(Options{Format: SegmentFormat, Input: cdir}),
					seg(Options{Format: BaseSegmentFormat, Input: bdir, SegmentExclude: kdir}),
				}
				if tc.err != "" {
					if segs[2] != "" {
						t.Fatalf("the base segment was written, want an error with %q", tc.err)
					}
					return
				}
				// The base segment does not carry the kernel's files.
				b, err := os.Open(segs[2])
				if err != nil {
					t.Fatal(err)
				}
				bfs, err := initramfs.Unpack(b)
				b.Close()
				if err != nil {
					t.Fatal(err)
				}
				for p, n := range bfs.Nodes {
					if strings.HasSuffix(p, ".ko") || strings.HasSuffix(p, "fw.bin") {
						t.Errorf("the base segment holds the kernel's /%s (%s)", p, n.Describe())
					}
				}
				out := t.TempDir()
				if err := Run(ctx, Options{Format: "kernel+initrd", Name: "sys", Input: bdir, Output: out, Epoch: ep, InitrdSegments: segs}); err != nil {
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
				f, err := os.Open(filepath.Join(out, "sys-initrd.img"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := initramfs.Unpack(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Errors) > 0 {
					t.Errorf("the kernel would fail on %q", got.Errors)
				}
				if d := initramfs.Diff(want, got); len(d) > 0 {
					t.Errorf("initrd unpacks to another tree than the tree:\n%s", strings.Join(d, "\n"))
				}
			})
		}
	}
}

// TestKernelSegmentChecks: the kernel's segment leaves out boot/ and
// containers/ and has no "." entry; --segment-exclude is refused by the
// other segment formats.
func TestKernelSegmentChecks(t *testing.T) {
	ctx := context.Background()
	in := t.TempDir()
	mkTree(t, in, []treeEnt{{"boot/", 0o755, 1, ""}, {"boot/kernel", 0o644, 1, "k"}, {"containers/", 0o755, 1, ""},
		{"lib/", 0o755, 1, ""}, {"lib/m.ko", 0o644, 1, "m"}}, func(string) bool { return true })
	out := t.TempDir()
	if err := Run(ctx, Options{Format: KernelSegmentFormat, Name: "s", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, SegmentFile))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := initramfs.Unpack(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range fs.Nodes {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if got := strings.Join(paths, " "); got != " lib lib/m.ko" || fs.Nodes[""].Mode != initramfs.TypeDir|0o1777 {
		t.Errorf("the kernel's segment holds %q, root %s", got, fs.Nodes[""].Describe())
	}
	for _, format := range []string{SegmentFormat, ExtraSegmentFormat, KernelSegmentFormat} {
		if err := Run(ctx, Options{Format: format, Name: "s", Input: t.TempDir(), Output: t.TempDir(), SegmentExclude: in}); err == nil || !strings.Contains(err.Error(), "--segment-exclude") {
			t.Errorf("%s with --segment-exclude: %v", format, err)
		}
	}
}
