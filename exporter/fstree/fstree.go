// Package fstree walks a root filesystem tree on disk in a deterministic
// order and describes each entry the way archive writers need it: type,
// permissions, owner, device numbers, symlink target and hardlink groups.
//
// Only metadata is held in memory; file contents are opened one at a time by
// the caller, so writers built on it stream.
package fstree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Entry is one path in the tree.
type Entry struct {
	Path     string // slash-separated, relative to the root, no leading "/"
	Mode     fs.FileMode
	UID, GID uint32
	Size     int64
	ModTime  time.Time
	Rdev     uint64 // device number for character and block devices
	Linkname string // symlink target
	// LinkGroup is non-zero for regular files that share an inode with another
	// path in the tree; all paths of one inode have the same LinkGroup.
	LinkGroup int
	// FirstLink is true for the first path (in walk order) of a link group.
	FirstLink bool
	// NLink is the number of paths in the tree sharing this inode (1 if none).
	NLink int
}

// Options select what Walk visits.
type Options struct {
	// Skip reports whether a path (relative, slash-separated) and, for a
	// directory, everything below it, must be left out.
	Skip func(rel string, isDir bool) bool
}

// Walk lists every entry under root (root itself excluded), parents before
// children and siblings sorted by name, so the order is the same for equal
// trees whatever the on-disk directory order.
func Walk(root string, opt Options) ([]Entry, error) {
	type ino struct{ dev, ino uint64 }
	var entries []Entry
	groups := map[ino][]int{}
	var walk func(dir string) error
	walk = func(dir string) error {
		f, err := os.Open(filepath.Join(root, dir))
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
		sort.Strings(names)
		for _, name := range names {
			rel := path.Join(dir, name)
			full := filepath.Join(root, rel)
			fi, err := os.Lstat(full)
			if err != nil {
				return err
			}
			if opt.Skip != nil && opt.Skip(rel, fi.IsDir()) {
				continue
			}
			e := Entry{Path: rel, Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime(), NLink: 1}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				e.UID, e.GID = st.Uid, st.Gid
				e.Rdev = uint64(st.Rdev)
				if fi.Mode().IsRegular() && st.Nlink > 1 {
					k := ino{uint64(st.Dev), st.Ino}
					groups[k] = append(groups[k], len(entries))
				}
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				if e.Linkname, err = os.Readlink(full); err != nil {
					return err
				}
				e.Size = int64(len(e.Linkname))
			case !fi.Mode().IsRegular():
				e.Size = 0
			}
			entries = append(entries, e)
			if fi.IsDir() {
				if err := walk(rel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	// Number link groups in walk order so the numbering is deterministic.
	keys := make([]ino, 0, len(groups))
	for k, idx := range groups {
		if len(idx) > 1 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return groups[keys[i]][0] < groups[keys[j]][0] })
	for n, k := range keys {
		idx := groups[k]
		for i, at := range idx {
			entries[at].LinkGroup = n + 1
			entries[at].NLink = len(idx)
			entries[at].FirstLink = i == 0
		}
	}
	return entries, nil
}

// Major and Minor split a Linux device number.
func Major(dev uint64) uint32 { return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff) }

// Minor returns the minor part of a Linux device number.
func Minor(dev uint64) uint32 { return uint32(dev&0xff | (dev>>12)&^0xff) }

// PermBits returns the permission and setuid/setgid/sticky bits of a Go
// file mode as stat(2) and archive headers spell them (04000, 02000, 01000).
func PermBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// RootEntry describes the tree's top directory itself (Walk leaves it
// out): its permissions, owner and time, or a 0755 root-owned directory
// stamped mtime when it cannot be read.
func RootEntry(root string, mtime time.Time) Entry {
	e := Entry{Mode: fs.ModeDir | 0o755, ModTime: mtime}
	fi, err := os.Stat(root)
	if err != nil {
		return e
	}
	e.Mode, e.ModTime = fs.ModeDir|fi.Mode().Perm(), fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = st.Uid, st.Gid
	}
	return e
}

// File type bits of st_mode (S_IFMT and its values).
const (
	TypeMask   = 0o170000
	TypeFifo   = 0o010000
	TypeChar   = 0o020000
	TypeDir    = 0o040000
	TypeBlock  = 0o060000
	TypeFile   = 0o100000
	TypeLink   = 0o120000
	TypeSocket = 0o140000
)

// UnixMode returns st_mode for a Go file mode: the file type bits and
// PermBits, as the filesystem formats store it.
func UnixMode(m fs.FileMode) uint32 {
	var t uint32
	switch {
	case m.IsDir():
		t = TypeDir
	case m&fs.ModeSymlink != 0:
		t = TypeLink
	case m&fs.ModeCharDevice != 0:
		t = TypeChar
	case m&fs.ModeDevice != 0:
		t = TypeBlock
	case m&fs.ModeNamedPipe != 0:
		t = TypeFifo
	case m&fs.ModeSocket != 0:
		t = TypeSocket
	default:
		t = TypeFile
	}
	return t | PermBits(m)
}

// CountingWriter passes writes to W and counts the bytes in N.
type CountingWriter struct {
	W io.Writer
	N int64
}

// Write writes p to W.
func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}

// Zeros writes n zero bytes.
func (c *CountingWriter) Zeros(n int64) error {
	if n < 0 {
		return fmt.Errorf("internal error: %d bytes of padding", n)
	}
	var z [4096]byte
	for n > 0 {
		k := min(n, int64(len(z)))
		if _, err := c.Write(z[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// OpenRegular opens the regular file at name for reading without
// following a symlink in its last component and without blocking on a FIFO
// or a device (O_NOFOLLOW, O_NONBLOCK), and fails unless what it opened is
// a regular file. Every writer reads the tree's contents through it, so a
// tree whose file was swapped for a symlink to /dev/zero or for a FIFO
// makes an error, not an endless read or a hang.
func OpenRegular(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: a symlink, not a regular file", name)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %s, not a regular file", name, TypeName(fi.Mode()))
	}
	return f, nil
}

// TypeName names the file type of m in words ("a directory", "a FIFO").
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "an irregular file"
}

// CopyContents writes the first size bytes of the regular file at name to
// w (buf, if not nil, is the copy buffer) and fails if the file holds
// fewer: the tree changed while being archived. It opens name
// with OpenRegular.
func CopyContents(w io.Writer, name string, size int64, buf []byte) error {
	f, err := OpenRegular(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, size), buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file changed size while archiving (%d of %d bytes)", n, size)
	}
	return nil
}
