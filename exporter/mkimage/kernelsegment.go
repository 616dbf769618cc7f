package mkimage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/formats"
)

// KernelSegmentFormat is the segment of the kernel's tree outside boot/
// (formats.KernelSegmentFormat).
const KernelSegmentFormat = formats.KernelSegmentFormat

func init() {
	Formats[KernelSegmentFormat] = writeKernelSegment
}

// skipKernel leaves out what the kernel's segment does not write: boot/,
// which is not in the initrd, and containers/, whose directories the
// containers segment writes from the base (as for baseSplitSegment).
func skipKernel(rel string, _ bool) bool { return rel == "boot" || rel == ContainersDir }

// writeKernelSegment writes KernelSegmentFormat's segment: the tree
// without ".", boot/ and containers/. It comes first in the initrd, so
// every later segment's entry of the same path wins; the base segment,
// given this tree with --segment-exclude, leaves out its non-directories
// and writes its directories again with the merged tree's mode, owner and
// time.
func writeKernelSegment(ctx context.Context, o Options) error {
	if o.SegmentExclude != "" {
		return fmt.Errorf("--segment-exclude is for the base segment formats only")
	}
	if _, err := os.ReadDir(o.Input); err != nil {
		return err
	}
	return writeSegmentFile(ctx, o.Output, func(w io.Writer) error {
		if err := initrd.Write(w, o.Input, initrd.Options{Epoch: o.Epoch, NoRoot: true, Skip: skipKernel}); err != nil {
			return fmt.Errorf("initrd kernel segment: %w", err)
		}
		return nil
	})
}

// excludeKernel returns skip extended to leave out the non-directories of
// the kernel segment's tree o.SegmentExclude (outside boot/ and
// containers/), after checking that the input holds each of them as the
// kernel's tree does: same type, mode, owner, size, time and link target,
// and that it holds every directory of the kernel's tree as a directory.
// The kernel's segment, earlier in the initrd, writes them; the base
// segment would otherwise write them a second time, and a regular file
// written again over one of them would truncate every path hard-linked to
// it. llbgen splits the kernel off only when nothing after the kernel
// writes over its non-directories, so a difference here is an error.
func excludeKernel(o Options, skip func(string, bool) bool) (func(string, bool) bool, error) {
	if skip == nil {
		skip = initrd.SkipBoot
	}
	root := o.SegmentExclude
	excl := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipKernel(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			// The kernel's segment writes it as a directory: the base
			// must hold one there too (not a symlink, whose target the
			// kernel's entries would then miss), so that its own
			// entry comes out as the merged tree's.
			if fi, err := os.Lstat(filepath.Join(o.Input, filepath.FromSlash(rel))); err != nil || !fi.IsDir() {
				return fmt.Errorf("the base's /%s is not a directory, as the kernel's is: the kernel's segment would write into it", rel)
			}
			return nil
		}
		if err := sameEntry(p, filepath.Join(o.Input, filepath.FromSlash(rel))); err != nil {
			return fmt.Errorf("the base's /%s is not the kernel's, which the kernel's segment writes: %w", rel, err)
		}
		excl[rel] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("segment exclude: %w", err)
	}
	return func(rel string, isDir bool) bool {
		return skip(rel, isDir) || !isDir && excl[rel]
	}, nil
}

// sameEntry fails unless a (the kernel's) and b (the base's) are the same
// kind of entry with the same metadata and size, read without following
// symlinks.
func sameEntry(a, b string) error {
	fa, err := os.Lstat(a)
	if err != nil {
		return err
	}
	fb, err := os.Lstat(b)
	if err != nil {
		return err
	}
	sa, oka := fa.Sys().(*syscall.Stat_t)
	sb, okb := fb.Sys().(*syscall.Stat_t)
	switch {
	case fa.Mode() != fb.Mode():
		return fmt.Errorf("mode %v, the kernel's %v", fb.Mode(), fa.Mode())
	case fa.Mode().IsRegular() && fa.Size() != fb.Size():
		return fmt.Errorf("%d bytes, the kernel's %d", fb.Size(), fa.Size())
	case fa.ModTime().Unix() != fb.ModTime().Unix():
		return fmt.Errorf("time %s, the kernel's %s", fb.ModTime().UTC(), fa.ModTime().UTC())
	case oka && okb && (sa.Uid != sb.Uid || sa.Gid != sb.Gid):
		return fmt.Errorf("owner %d:%d, the kernel's %d:%d", sb.Uid, sb.Gid, sa.Uid, sa.Gid)
	case oka && okb && fa.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0 && sa.Rdev != sb.Rdev:
		return fmt.Errorf("device %#x, the kernel's %#x", sb.Rdev, sa.Rdev)
	}
	if fa.Mode()&fs.ModeSymlink != 0 {
		la, err := os.Readlink(a)
		if err != nil {
			return err
		}
		lb, err := os.Readlink(b)
		if err != nil {
			return err
		}
		if la != lb {
			return fmt.Errorf("a symlink to %s, the kernel's to %s", lb, la)
		}
	}
	return nil
}
