// Package initrd writes a root filesystem tree as a gzip-compressed newc cpio
// initramfs, the way LinuxKit's kernel+initrd output does: everything but
// boot/, which holds the kernel, its command line and CPU microcode.
//
// The archive is streamed: file contents are copied one file at a time into
// a parallel gzip writer, so memory use does not grow with the tree.
package initrd

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/lkbuild/lkbuild/exporter/cpio"
	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// Options control the archive.
type Options struct {
	// Epoch, when set, clamps every modification time to it (SOURCE_DATE_EPOCH),
	// so equal trees give equal bytes.
	Epoch *time.Time
	// Skip leaves out paths, as fstree.Options.Skip. Nil means SkipBoot.
	Skip func(rel string, isDir bool) bool
	// NoRoot leaves out the "." entry of the root directory: for a segment
	// that a later segment of the same initramfs follows with its own
	// "." entry (see docs/formats.md).
	NoRoot bool
}

// SkipBoot leaves out boot/ and everything in it: LinuxKit writes the kernel,
// cmdline and microcode found there as separate files, never into the initrd.
func SkipBoot(rel string, isDir bool) bool { return rel == "boot" }

// Write writes the gzip-compressed cpio archive of root to w.
func Write(w io.Writer, root string, opt Options) error {
	zw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
	if err != nil {
		return err
	}
	if err := zw.SetConcurrency(1<<20, 4); err != nil {
		return err
	}
	if err := WriteCPIO(zw, root, opt); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// WriteCPIO writes the uncompressed cpio archive of root to w.
func WriteCPIO(w io.Writer, root string, opt Options) error {
	skip := opt.Skip
	if skip == nil {
		skip = SkipBoot
	}
	entries, err := fstree.Walk(root, fstree.Options{Skip: skip})
	if err != nil {
		return fmt.Errorf("walking %s: %w", root, err)
	}
	cw := cpio.NewWriter(w)
	// The root directory first: the kernel applies a "." entry's mode and
	// owner to the initramfs root, which is otherwise tmpfs's 1777
	// (world-writable) when the command line names no root device.
	// LinuxKit's initrds carry one from kernel.tar's "./" entry.
	re := fstree.RootEntry(root, time.Unix(0, 0))
	rootTime := re.ModTime
	if opt.Epoch != nil && rootTime.After(*opt.Epoch) {
		rootTime = *opt.Epoch
	}
	if !opt.NoRoot {
		if err := cw.WriteHeader(&cpio.Header{Name: ".", Mode: fstree.UnixMode(re.Mode), UID: re.UID, GID: re.GID,
			NLink: 2, Mtime: rootTime.Unix(), Ino: uint32(len(entries) + 1)}); err != nil {
			return err
		}
	}
	groupIno := map[int]uint32{}
	buf := make([]byte, 1<<20)
	for i, e := range entries {
		mtime := e.ModTime
		if opt.Epoch != nil && mtime.After(*opt.Epoch) {
			mtime = *opt.Epoch
		}
		h := &cpio.Header{
			Name:  e.Path,
			Mode:  fstree.UnixMode(e.Mode),
			UID:   e.UID,
			GID:   e.GID,
			NLink: uint32(e.NLink),
			Mtime: mtime.Unix(),
			Ino:   uint32(i + 1),
			Size:  e.Size,
		}
		if e.Mode.IsDir() {
			h.NLink = 2
		}
		if e.LinkGroup != 0 {
			// Hardlinks share an inode number; the data goes with the first
			// path and the kernel links the later ones to it.
			if ino, ok := groupIno[e.LinkGroup]; ok {
				h.Ino = ino
				h.Size = 0
			} else {
				groupIno[e.LinkGroup] = h.Ino
			}
		}
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			h.Linkname = e.Linkname
		case e.Mode&fs.ModeDevice != 0:
			h.RDevMajor, h.RDevMinor = fstree.Major(e.Rdev), fstree.Minor(e.Rdev)
		}
		if err := cw.WriteHeader(h); err != nil {
			return err
		}
		if e.Mode.IsRegular() && h.Size > 0 {
			if err := fstree.CopyContents(cw, filepath.Join(root, e.Path), h.Size, buf); err != nil {
				return fmt.Errorf("%s: %w", e.Path, err)
			}
		}
	}
	return cw.Close()
}
