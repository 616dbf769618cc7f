// Package initramfs is a model of how the Linux kernel unpacks an
// initramfs (init/initramfs.c), for tests: it applies a stream of
// concatenated newc cpio archives, each optionally in its own gzip member,
// to an in-memory tree with the kernel's rules, so a segmented initrd can
// be checked against the tree it must produce without booting it.
//
// The rules modelled, entry by entry and in stream order:
//   - before any entry, clean_path: whatever is at the path (not followed)
//     is removed when its type differs from the entry's (a symlink entry
//     differs from everything); a directory is removed with rmdir, which
//     fails when it is not empty, and the entry then fails too;
//   - a directory is created with mkdir (an existing one is kept), then
//     chown and chmod are applied; its mtime is recorded and every recorded
//     mtime is applied after the whole stream, in order, to whatever is at
//     the path then (so the last entry of a directory wins);
//   - a regular file with nlink >= 2 whose (ino, major, minor, type) was
//     seen before in the same archive becomes a hard link to the first
//     path; the table of seen inodes is emptied at every TRAILER!!!, so
//     hard links never span archives; otherwise the file is opened with
//     O_CREAT|O_TRUNC (an existing file of the same type is truncated, and
//     with it every path hard-linked to it), then chown, chmod, the data and
//     the mtime are applied;
//   - a symlink is created (after clean_path removed what was there), then
//     lchown and the mtime;
//   - devices, fifos and sockets are created with mknod, then chown, chmod
//     and the mtime;
//   - intermediate path components follow symlinks; a missing parent makes
//     the entry fail. Failures are silent in the kernel; the model records
//     them in FS.Errors.
//
// Gzip members and uncompressed archives may be mixed, separated by NUL
// padding, as the kernel accepts them.
package initramfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// File type bits, as in stat(2).
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeReg     = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFifo    = 0o010000
)

// Inode is one file of the tree; paths that are hard links share one.
type Inode struct {
	Mode      uint32 // type and permission bits
	UID, GID  uint32
	Mtime     int64
	Size      int64
	Sum       [32]byte // sha256 of a regular file's data
	Link      string   // symlink target
	RDevMajor uint32
	RDevMinor uint32
}

// FS is an unpacked tree: every path ("" is the root) and its inode.
type FS struct {
	Nodes map[string]*Inode
	// Errors lists the entries the kernel would have failed on silently.
	Errors []string
	links  map[linkKey]string
	dirs   []dirTime
}

type linkKey struct{ major, minor, ino, typ uint32 }

type dirTime struct {
	path  string
	mtime int64
}

// New returns an empty initramfs: a root directory with tmpfs's mode
// (1777 when the kernel mounts it with no root= device), owned by root.
func New() *FS {
	return &FS{Nodes: map[string]*Inode{"": {Mode: TypeDir | 0o1777}}}
}

// Unpack reads a whole initramfs stream and applies it to a new FS.
func Unpack(r io.Reader) (*FS, error) {
	fs := New()
	if err := fs.Apply(r); err != nil {
		return nil, err
	}
	return fs, nil
}

// Apply applies a stream of archives to fs, then the recorded directory
// times (as the kernel does at the end of unpack_to_rootfs).
func (fs *FS) Apply(r io.Reader) error {
	buf, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	pos := 0
	for pos < len(buf) {
		switch {
		case buf[pos] == 0:
			pos++
		case buf[pos] == '0':
			if pos%4 != 0 {
				return fmt.Errorf("offset %d: unaligned cpio header", pos)
			}
			n, err := fs.applyCPIO(buf[pos:], true)
			if err != nil {
				return fmt.Errorf("offset %d: %w", pos, err)
			}
			pos += n
		case len(buf)-pos >= 2 && buf[pos] == 0x1f && buf[pos+1] == 0x8b:
			br := bytes.NewReader(buf[pos:])
			zr, err := gzip.NewReader(br)
			if err != nil {
				return fmt.Errorf("offset %d: %w", pos, err)
			}
			zr.Multistream(false)
			data, err := io.ReadAll(zr)
			if err != nil {
				return fmt.Errorf("offset %d: gzip member: %w", pos, err)
			}
			if _, err := fs.applyCPIO(data, false); err != nil {
				return fmt.Errorf("gzip member at offset %d: %w", pos, err)
			}
			pos = len(buf) - br.Len()
		default:
			return fmt.Errorf("offset %d: junk in archive (byte %#x)", pos, buf[pos])
		}
	}
	for _, d := range fs.dirs {
		if n := fs.lookup(d.path); n != nil {
			n.Mtime = d.mtime
		}
	}
	fs.dirs = nil
	return nil
}

// applyCPIO applies entries (separated by NUL padding) from data. With
// stopAtOther it returns, without error, at the first byte after an entry
// that starts neither an entry nor padding; without, all of data must be
// entries and padding. It returns the bytes used.
func (fs *FS) applyCPIO(data []byte, stopAtOther bool) (int, error) {
	pos := 0
	for pos < len(data) {
		if data[pos] == 0 {
			pos++
			continue
		}
		if pos%4 != 0 {
			return pos, errors.New("broken padding")
		}
		if data[pos] != '0' {
			if stopAtOther {
				return pos, nil
			}
			return pos, fmt.Errorf("junk at %d", pos)
		}
		n, err := fs.entry(data[pos:])
		if err != nil {
			return pos, err
		}
		pos += n
	}
	return pos, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// entry parses and applies one entry; it returns its length with padding.
func (fs *FS) entry(b []byte) (int, error) {
	const hlen = 110
	if len(b) < hlen {
		return 0, errors.New("truncated header")
	}
	if string(b[:6]) != "070701" {
		return 0, errors.New("no cpio magic")
	}
	var f [13]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return 0, fmt.Errorf("bad header field: %w", err)
		}
		f[i] = uint32(v)
	}
	ino, mode, uid, gid, nlink, mtime, size := f[0], f[1], f[2], f[3], f[4], int64(f[5]), int(f[6])
	major, minor, rmaj, rmin, namelen := f[7], f[8], f[9], f[10], int(f[11])
	dataAt := align4(hlen + namelen)
	end := align4(dataAt + size)
	if namelen == 0 || len(b) < dataAt+size {
		return 0, errors.New("truncated entry")
	}
	if end > len(b) {
		end = len(b)
	}
	name := string(b[hlen : hlen+namelen-1])
	data := b[dataAt : dataAt+size]
	if name == "TRAILER!!!" {
		fs.links = nil
		return end, nil
	}
	p, err := clean(name)
	if err != nil {
		fs.fail(name, err)
		return end, nil
	}
	h := hdr{ino: ino, mode: mode, uid: uid, gid: gid, nlink: nlink, mtime: mtime, major: major, minor: minor,
		rmaj: rmaj, rmin: rmin, data: data}
	switch mode & TypeMask {
	case TypeSymlink:
		fs.symlink(p, h)
	case TypeReg:
		fs.regular(p, h)
	case TypeDir:
		fs.dir(p, h)
	case TypeBlock, TypeChar, TypeFifo, TypeSocket:
		fs.special(p, h)
	default:
		fs.fail(p, fmt.Errorf("unknown type %o", mode&TypeMask))
	}
	return end, nil
}

type hdr struct {
	ino, mode, uid, gid, nlink uint32
	mtime                      int64
	major, minor, rmaj, rmin   uint32
	data                       []byte
}

// clean turns an archive name into a path of the model ("" is the root).
func clean(name string) (string, error) {
	var out []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			return "", errors.New(".. in name")
		default:
			out = append(out, c)
		}
	}
	return strings.Join(out, "/"), nil
}

func (fs *FS) fail(p string, err error) {
	fs.Errors = append(fs.Errors, fmt.Sprintf("/%s: %v", p, err))
}

// resolveParent follows the directories above p, symlinks included, and
// returns the real path of p's parent joined with p's last name.
func (fs *FS) resolveParent(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return p, nil
	}
	dir, err := fs.resolve(p[:i], 0)
	if err != nil {
		return "", err
	}
	return join(dir, p[i+1:]), nil
}

// resolve follows every component of p, symlinks included, to a directory.
func (fs *FS) resolve(p string, hops int) (string, error) {
	cur := ""
	comps := strings.Split(p, "/")
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if i := strings.LastIndexByte(cur, '/'); i >= 0 {
				cur = cur[:i]
			} else {
				cur = ""
			}
			continue
		}
		next := join(cur, c)
		n := fs.Nodes[next]
		switch {
		case n == nil:
			return "", fmt.Errorf("/%s: no such file or directory", next)
		case n.Mode&TypeMask == TypeSymlink:
			if hops++; hops > 40 {
				return "", errors.New("too many levels of symbolic links")
			}
			if strings.HasPrefix(n.Link, "/") {
				cur = ""
			}
			comps = append(strings.Split(n.Link, "/"), comps...)
		case n.Mode&TypeMask == TypeDir:
			cur = next
		default:
			return "", fmt.Errorf("/%s: not a directory", next)
		}
	}
	return cur, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "/" + b
}

// lookup returns the node at p (parents followed, p itself not).
func (fs *FS) lookup(p string) *Inode {
	real, err := fs.resolveParent(p)
	if err != nil {
		return nil
	}
	return fs.Nodes[real]
}

// cleanPath is the kernel's clean_path: remove what is at p when its type
// differs from typ (0 differs from every type).
func (fs *FS) cleanPath(real string, typ uint32) {
	n := fs.Nodes[real]
	if n == nil || real == "" || n.Mode&TypeMask == typ {
		return
	}
	if n.Mode&TypeMask == TypeDir {
		if fs.hasChildren(real) {
			return // rmdir fails: ENOTEMPTY
		}
	}
	delete(fs.Nodes, real)
}

func (fs *FS) hasChildren(dir string) bool {
	prefix := dir + "/"
	for p := range fs.Nodes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func perm(mode uint32) uint32 { return mode & 0o7777 }

// parentOK reports whether real's parent exists as a directory.
func (fs *FS) parentOK(real string) bool {
	if real == "" {
		return true
	}
	parent := ""
	if i := strings.LastIndexByte(real, '/'); i >= 0 {
		parent = real[:i]
	}
	n := fs.Nodes[parent]
	return n != nil && n.Mode&TypeMask == TypeDir
}

// maybeLink is the kernel's maybe_link: 1 when p was linked to an earlier
// path of the same inode, -1 when that link failed, 0 otherwise.
func (fs *FS) maybeLink(p, real string, h hdr) int {
	if h.nlink < 2 {
		return 0
	}
	k := linkKey{h.major, h.minor, h.ino, h.mode & TypeMask}
	old, ok := fs.links[k]
	if !ok {
		if fs.links == nil {
			fs.links = map[linkKey]string{}
		}
		fs.links[k] = p
		return 0
	}
	fs.cleanPath(real, 0)
	src := fs.lookup(old)
	if src == nil || src.Mode&TypeMask == TypeDir || fs.Nodes[real] != nil || !fs.parentOK(real) {
		fs.fail(p, fmt.Errorf("link to /%s failed", old))
		return -1
	}
	fs.Nodes[real] = src
	return 1
}

func (fs *FS) regular(p string, h hdr) {
	real, err := fs.resolveParent(p)
	if err != nil {
		fs.fail(p, err)
		return
	}
	fs.cleanPath(real, TypeReg)
	ml := fs.maybeLink(p, real, h)
	if ml < 0 {
		return
	}
	n := fs.Nodes[real]
	switch {
	case n == nil:
		if !fs.parentOK(real) {
			fs.fail(p, errors.New("no parent directory"))
			return
		}
		n = &Inode{}
		fs.Nodes[real] = n
	case n.Mode&TypeMask != TypeReg:
		fs.fail(p, fmt.Errorf("cannot open: a %o is there", n.Mode&TypeMask))
		return
	case ml != 1:
		n.Size, n.Sum = 0, sha256.Sum256(nil) // O_TRUNC: every hard link sees it
	}
	n.UID, n.GID = h.uid, h.gid
	n.Mode = TypeReg | perm(h.mode)
	if len(h.data) > 0 || ml != 1 {
		n.Size, n.Sum = int64(len(h.data)), sha256.Sum256(h.data)
	}
	n.Mtime = h.mtime
}

func (fs *FS) dir(p string, h hdr) {
	real, err := fs.resolveParent(p)
	if err != nil {
		fs.fail(p, err)
		return
	}
	fs.cleanPath(real, TypeDir)
	n := fs.Nodes[real]
	switch {
	case n == nil:
		if !fs.parentOK(real) {
			fs.fail(p, errors.New("no parent directory"))
			return
		}
		n = &Inode{Mode: TypeDir}
		fs.Nodes[real] = n
	case n.Mode&TypeMask != TypeDir:
		fs.fail(p, fmt.Errorf("mkdir: a %o is there", n.Mode&TypeMask))
		return
	}
	n.UID, n.GID = h.uid, h.gid
	n.Mode = TypeDir | perm(h.mode)
	fs.dirs = append(fs.dirs, dirTime{path: p, mtime: h.mtime})
}

func (fs *FS) symlink(p string, h hdr) {
	real, err := fs.resolveParent(p)
	if err != nil {
		fs.fail(p, err)
		return
	}
	fs.cleanPath(real, 0)
	if fs.Nodes[real] != nil || !fs.parentOK(real) {
		fs.fail(p, errors.New("symlink: cannot create"))
		return
	}
	fs.Nodes[real] = &Inode{Mode: TypeSymlink | 0o777, UID: h.uid, GID: h.gid, Mtime: h.mtime,
		Link: string(h.data), Size: int64(len(h.data))}
}

func (fs *FS) special(p string, h hdr) {
	real, err := fs.resolveParent(p)
	if err != nil {
		fs.fail(p, err)
		return
	}
	fs.cleanPath(real, h.mode&TypeMask)
	if fs.maybeLink(p, real, h) != 0 {
		return
	}
	n := fs.Nodes[real]
	if n == nil {
		if !fs.parentOK(real) {
			fs.fail(p, errors.New("no parent directory"))
			return
		}
		n = &Inode{RDevMajor: h.rmaj, RDevMinor: h.rmin}
		fs.Nodes[real] = n
	} else {
		fs.fail(p, errors.New("mknod: exists")) // chown and chmod still apply
	}
	n.UID, n.GID = h.uid, h.gid
	n.Mode = h.mode&TypeMask | perm(h.mode)
	n.Mtime = h.mtime
}

// FromDir reads the tree at root, leaving out what skip names (as
// fstree.Options.Skip), with hard links sharing inodes. The root's own
// attributes are those of root itself. Times are clamped to clamp when it
// is not nil, and to newc's 32 unsigned bits.
func FromDir(root string, skip func(rel string, isDir bool) bool, clamp *int64) (*FS, error) {
	ents, err := fstree.Walk(root, fstree.Options{Skip: skip})
	if err != nil {
		return nil, err
	}
	t := func(s int64) int64 {
		if clamp != nil && s > *clamp {
			s = *clamp
		}
		return min(max(s, 0), 1<<32-1)
	}
	re := fstree.RootEntry(root, time.Unix(0, 0))
	fs := &FS{Nodes: map[string]*Inode{"": {Mode: fstree.UnixMode(re.Mode), UID: re.UID, GID: re.GID, Mtime: t(re.ModTime.Unix())}}}
	groups := map[int]*Inode{}
	for _, e := range ents {
		if g, ok := groups[e.LinkGroup]; ok && e.LinkGroup != 0 {
			fs.Nodes[e.Path] = g
			continue
		}
		n := &Inode{Mode: fstree.UnixMode(e.Mode), UID: e.UID, GID: e.GID, Mtime: t(e.ModTime.Unix()), Link: e.Linkname}
		switch {
		case e.Mode.IsRegular():
			s, size, err := hashFile(filepath.Join(root, e.Path))
			if err != nil {
				return nil, err
			}
			n.Sum, n.Size = s, size
		case e.Mode&os.ModeSymlink != 0:
			n.Size = int64(len(e.Linkname))
		case e.Mode&os.ModeDevice != 0:
			n.RDevMajor, n.RDevMinor = fstree.Major(e.Rdev), fstree.Minor(e.Rdev)
		}
		if e.LinkGroup != 0 {
			groups[e.LinkGroup] = n
		}
		fs.Nodes[e.Path] = n
	}
	return fs, nil
}

func hashFile(name string) ([32]byte, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReader(f))
	if err != nil {
		return [32]byte{}, 0, err
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s, n, nil
}

// Describe prints an inode's attributes in one line.
func (n *Inode) Describe() string {
	s := fmt.Sprintf("mode %06o uid %d gid %d mtime %d", n.Mode, n.UID, n.GID, n.Mtime)
	switch n.Mode & TypeMask {
	case TypeReg:
		s += fmt.Sprintf(" size %d sha256 %x", n.Size, n.Sum[:6])
	case TypeSymlink:
		s += " -> " + n.Link
	case TypeBlock, TypeChar:
		s += fmt.Sprintf(" dev %d,%d", n.RDevMajor, n.RDevMinor)
	}
	return s
}

// Diff lists every difference between a and b: paths in one only, and
// paths whose type, mode, owner, time, size, contents, link target, device
// or hard-link group differ. Empty means the trees are identical.
func Diff(a, b *FS) []string {
	var out []string
	paths := map[string]bool{}
	for p := range a.Nodes {
		paths[p] = true
	}
	for p := range b.Nodes {
		paths[p] = true
	}
	groupsA, groupsB := a.linkGroups(), b.linkGroups()
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		na, nb := a.Nodes[p], b.Nodes[p]
		switch {
		case na == nil:
			out = append(out, fmt.Sprintf("/%s: only in second (%s)", p, nb.Describe()))
		case nb == nil:
			out = append(out, fmt.Sprintf("/%s: only in first (%s)", p, na.Describe()))
		case na.Describe() != nb.Describe() || na.Sum != nb.Sum:
			out = append(out, fmt.Sprintf("/%s: %s != %s", p, na.Describe(), nb.Describe()))
		case groupsA[p] != groupsB[p]:
			out = append(out, fmt.Sprintf("/%s: hard links [%s] != [%s]", p, groupsA[p], groupsB[p]))
		}
	}
	return out
}

// linkGroups maps each path sharing its inode with others to the sorted
// list of those paths.
func (fs *FS) linkGroups() map[string]string {
	by := map[*Inode][]string{}
	for p, n := range fs.Nodes {
		by[n] = append(by[n], p)
	}
	out := map[string]string{}
	for _, ps := range by {
		if len(ps) < 2 {
			continue
		}
		sort.Strings(ps)
		s := strings.Join(ps, " ")
		for _, p := range ps {
			out[p] = s
		}
	}
	return out
}

// FromTar reads a tree from a tar stream (the tar target's), leaving out
// the paths skip names and everything below them; hard links share
// inodes. A "./" entry gives the root's attributes; without one the root
// is absent from the result.
func FromTar(r io.Reader, skip func(rel string) bool) (*FS, error) {
	fs := &FS{Nodes: map[string]*Inode{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fs, nil
		}
		if err != nil {
			return nil, err
		}
		p, err := clean(h.Name)
		if err != nil {
			return nil, err
		}
		if skip != nil && p != "" && (skip(p) || skip(strings.SplitN(p, "/", 2)[0])) {
			continue
		}
		if h.Typeflag == tar.TypeLink {
			l, err := clean(h.Linkname)
			if err != nil {
				return nil, err
			}
			n := fs.Nodes[l]
			if n == nil {
				return nil, fmt.Errorf("%s: hard link to missing %s", h.Name, h.Linkname)
			}
			fs.Nodes[p] = n
			continue
		}
		n := &Inode{Mode: uint32(h.Mode) & 0o7777, UID: uint32(h.Uid), GID: uint32(h.Gid), Mtime: min(max(h.ModTime.Unix(), 0), 1<<32-1)}
		switch h.Typeflag {
		case tar.TypeDir:
			n.Mode |= TypeDir
		case tar.TypeSymlink:
			n.Mode |= TypeSymlink
			n.Link, n.Size = h.Linkname, int64(len(h.Linkname))
		case tar.TypeChar, tar.TypeBlock:
			n.Mode |= TypeChar
			if h.Typeflag == tar.TypeBlock {
				n.Mode = n.Mode&^TypeMask | TypeBlock
			}
			n.RDevMajor, n.RDevMinor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			n.Mode |= TypeFifo
		case tar.TypeReg:
			n.Mode |= TypeReg
			hs := sha256.New()
			size, err := io.Copy(hs, tr)
			if err != nil {
				return nil, err
			}
			copy(n.Sum[:], hs.Sum(nil))
			n.Size = size
		default:
			return nil, fmt.Errorf("%s: tar entry type %q", h.Name, h.Typeflag)
		}
		fs.Nodes[p] = n
	}
}
