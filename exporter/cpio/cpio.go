// Package cpio writes cpio archives in the "newc" (SVR4, no checksum) format
// that the Linux kernel unpacks as an initramfs.
//
// It is a small streaming writer: headers are written as they come and file
// data is copied through, so memory use does not depend on the archive size.
// Unlike general-purpose cpio libraries it writes device numbers (needed for
// /dev nodes) and lets the caller choose inode numbers (needed for hardlinks).
package cpio

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// MaxFileSize is the largest file newc can describe (its size field is 32 bits).
const MaxFileSize = 1<<32 - 1

const (
	magic       = "070701"
	headerLen   = 110
	trailerName = "TRAILER!!!"
)

// Header describes one archive entry.
type Header struct {
	Name     string // path inside the archive, without a leading "/"
	Mode     uint32 // st_mode: the type bits (fstree.Type*) and the permission bits
	UID, GID uint32
	NLink    uint32
	// Mtime is in seconds since the Unix epoch. newc stores 32 unsigned
	// bits: a time before 1970 is written as 0 and one after 2106-02-07
	// 06:28:15 UTC as that time, clamped rather than wrapped (an image's
	// file times are not bounded when SOURCE_DATE_EPOCH does not clamp
	// them).
	Mtime     int64
	Size      int64 // data bytes that follow; for symlinks len(Linkname), set by WriteHeader
	Ino       uint32
	DevMajor  uint32
	DevMinor  uint32
	RDevMajor uint32 // device numbers of character and block devices
	RDevMinor uint32
	Linkname  string // symlink target
}

// Writer writes a newc archive to an io.Writer.
type Writer struct {
	w       io.Writer
	remain  int64 // data bytes still expected for the current entry
	pad     int   // padding after the current entry's data
	written int64
	closed  bool
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

var zeros [4]byte

func (w *Writer) out(p []byte) error {
	n, err := w.w.Write(p)
	w.written += int64(n)
	return err
}

func (w *Writer) finishEntry() error {
	if w.remain != 0 {
		return fmt.Errorf("cpio: %d bytes of the previous entry were not written", w.remain)
	}
	if w.pad > 0 {
		if err := w.out(zeros[:w.pad]); err != nil {
			return err
		}
		w.pad = 0
	}
	return nil
}

// WriteHeader starts a new entry. For a symlink the target is written at
// once; for a regular file Size bytes must follow through Write.
func (w *Writer) WriteHeader(h *Header) error {
	if w.closed {
		return errors.New("cpio: write after close")
	}
	if err := w.finishEntry(); err != nil {
		return err
	}
	size := h.Size
	if h.Mode&fstree.TypeMask == fstree.TypeLink {
		size = int64(len(h.Linkname))
	} else if h.Mode&fstree.TypeMask != fstree.TypeFile {
		size = 0
	}
	if size > MaxFileSize {
		return fmt.Errorf("cpio: %s: %d bytes is more than newc can hold (4 GiB)", h.Name, size)
	}
	nlink := h.NLink
	if nlink == 0 {
		nlink = 1
	}
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		magic, h.Ino, h.Mode, h.UID, h.GID, nlink, clampTime(h.Mtime), uint32(size),
		h.DevMajor, h.DevMinor, h.RDevMajor, h.RDevMinor, len(h.Name)+1, 0)
	if err := w.out([]byte(hdr)); err != nil {
		return err
	}
	if err := w.out(append([]byte(h.Name), 0)); err != nil {
		return err
	}
	if p := (4 - (headerLen+len(h.Name)+1)%4) % 4; p > 0 {
		if err := w.out(zeros[:p]); err != nil {
			return err
		}
	}
	w.pad = int((4 - size%4) % 4)
	if h.Mode&fstree.TypeMask == fstree.TypeLink {
		return w.out([]byte(h.Linkname))
	}
	w.remain = size
	return nil
}

// Write writes data of the current regular-file entry.
func (w *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > w.remain {
		return 0, errors.New("cpio: write longer than the header's size")
	}
	n, err := w.w.Write(p)
	w.written += int64(n)
	w.remain -= int64(n)
	return n, err
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.WriteHeader(&Header{Name: trailerName}); err != nil {
		return err
	}
	w.closed = true
	return w.finishEntry()
}

// clampTime fits t (seconds) into newc's unsigned 32-bit field.
func clampTime(t int64) uint32 {
	switch {
	case t < 0:
		return 0
	case t > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(t)
}
