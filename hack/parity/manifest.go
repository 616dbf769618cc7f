package parity

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
)

// A Manifest describes a root filesystem tree, one Entry per path. It is
// what a tar stream gives when its entries are extracted in order into an
// empty directory (see Read for the exact rules), so LinuxKit's tar, which
// writes some paths several times, and lkbuild's, which writes each once,
// compare as trees.
type Manifest struct {
	Entries map[string]*Entry
	// Dropped lists entries extraction could not apply (a file over a
	// directory that is not empty, a path below a file), in stream order.
	Dropped []string
	// Contents holds, by hash (Entry.SHA256), the contents of the regular
	// files Read was asked to keep.
	Contents map[string][]byte
}

// Entry is one path of a tree.
type Entry struct {
	Path   string
	Type   string // dir, file, symlink, char, block, fifo
	Mode   int64  // permission bits with setuid, setgid and sticky; unset for symlinks
	UID    int
	GID    int
	MTime  int64  // seconds since the Unix epoch
	Size   int64  // regular files
	SHA256 string // regular files: the first 16 hex digits of the contents' sha256
	Target string // symlinks
	Dev    string // char and block devices: major,minor
	// Hardlink is, for a regular file with other names, the smallest
	// path of the group, the same on every member.
	Hardlink string
	Xattrs   []string // name=<first 16 hex digits of the value's sha256>, sorted
	Implicit bool     // a directory no entry created: a missing parent (0755 root, time 0)
}

// inode is what names point at: hardlinks share one.
type inode struct {
	typ      string
	mode     int64
	uid, gid int
	mtime    int64
	size     int64
	sum      string
	target   string
	dev      string
	xattrs   []string
	implicit bool
	children map[string]*inode // directories
}

// tree is the state of an extraction.
type tree struct {
	root     *inode
	dropped  []string
	keep     func(*tar.Header) bool
	contents map[string][]byte
}

func newDir(implicit bool) *inode {
	return &inode{typ: "dir", mode: 0o755, implicit: implicit, children: map[string]*inode{}}
}

// Read extracts a tar stream in memory and returns the tree it gives.
// Entries are applied in order, as `tar -x` as root and the kernel's
// initramfs unpacker do:
//   - names are cleaned ("./a/" is "a"; "./" is the root, recorded as ".");
//   - a missing parent directory is created (0755, root, time 0, marked
//     implicit); a symlink met as a parent is followed (an absolute target
//     from the root of the tree);
//   - a directory entry over a directory updates its mode, owner and time
//     and keeps its contents; over anything else it replaces it;
//   - any other entry replaces what is at its path, except a directory
//     that is not empty: that entry is dropped (listed in Dropped);
//   - a hardlink entry gives its path the inode of the (not followed)
//     target path: same contents, mode, owner and time.
//
// keep, when not nil, selects the regular files whose contents are kept in
// Manifest.Contents.
func Read(r io.Reader, keep func(*tar.Header) bool) (*Manifest, error) {
	t := &tree{root: newDir(true), keep: keep, contents: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := t.apply(h, tr); err != nil {
			return nil, err
		}
	}
	return t.manifest(), nil
}

func cleanName(name string) string {
	p := path.Clean("/" + name)
	if p == "/" {
		return "."
	}
	return p[1:]
}

func (t *tree) apply(h *tar.Header, r io.Reader) error {
	name := cleanName(h.Name)
	n := &inode{mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix()}
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			sum := sha256.Sum256([]byte(v))
			n.xattrs = append(n.xattrs, x+"="+hex.EncodeToString(sum[:8]))
		}
	}
	sort.Strings(n.xattrs)
	switch h.Typeflag {
	case tar.TypeDir:
		n.typ = "dir"
	case tar.TypeReg, tar.TypeRegA:
		n.typ = "file"
		sum := sha256.New()
		var body bytes.Buffer
		w := io.Writer(sum)
		if t.keep != nil && t.keep(h) {
			w = io.MultiWriter(sum, &body)
		}
		size, err := io.Copy(w, r)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		n.size, n.sum = size, hex.EncodeToString(sum.Sum(nil)[:8])
		if body.Len() > 0 || (t.keep != nil && size == 0 && t.keep(h)) {
			t.contents[n.sum] = body.Bytes()
		}
	case tar.TypeSymlink:
		n.typ, n.target, n.mode = "symlink", h.Linkname, 0
	case tar.TypeChar, tar.TypeBlock:
		n.typ = map[byte]string{tar.TypeChar: "char", tar.TypeBlock: "block"}[h.Typeflag]
		n.dev = fmt.Sprintf("%d,%d", h.Devmajor, h.Devminor)
	case tar.TypeFifo:
		n.typ = "fifo"
	case tar.TypeLink:
		target, err := t.lookup(cleanName(h.Linkname))
		if err != nil || target.typ == "dir" {
			t.dropped = append(t.dropped, fmt.Sprintf("%s: hardlink to %s: no such file", name, h.Linkname))
			return nil
		}
		n = target
	default:
		return nil // pax headers, GNU long names and the like are read by archive/tar
	}
	if name == "." {
		if n.typ == "dir" {
			t.root.mode, t.root.uid, t.root.gid, t.root.mtime, t.root.implicit = n.mode, n.uid, n.gid, n.mtime, false
			t.root.xattrs = n.xattrs
		}
		return nil
	}
	parent, base, err := t.parent(name)
	if err != nil {
		t.dropped = append(t.dropped, fmt.Sprintf("%s: %v", name, err))
		return nil
	}
	old := parent.children[base]
	switch {
	case old != nil && old.typ == "dir" && n.typ == "dir":
		old.mode, old.uid, old.gid, old.mtime, old.xattrs, old.implicit = n.mode, n.uid, n.gid, n.mtime, n.xattrs, false
	case old != nil && old.typ == "dir" && len(old.children) > 0:
		t.dropped = append(t.dropped, fmt.Sprintf("%s: %s over a directory that is not empty", name, n.typ))
	default:
		if n.typ == "dir" {
			n.children = map[string]*inode{}
		}
		parent.children[base] = n
	}
	return nil
}

// parent returns the directory that holds name (creating missing
// directories, following symlinks) and name's last element.
func (t *tree) parent(name string) (*inode, string, error) {
	dirName, base := path.Split(name)
	d, err := t.resolve(strings.TrimSuffix(dirName, "/"), true, 0)
	return d, base, err
}

// resolve walks p from the root, following symlinks, creating missing
// directories when create is set.
func (t *tree) resolve(p string, create bool, depth int) (*inode, error) {
	if depth > 40 {
		return nil, errors.New("too many levels of symbolic links")
	}
	cur, curPath := t.root, ""
	if p == "" || p == "." {
		return cur, nil
	}
	parts := strings.Split(p, "/")
	for i, el := range parts {
		next := cur.children[el]
		switch {
		case next == nil && create:
			next = newDir(true)
			cur.children[el] = next
		case next == nil:
			return nil, fmt.Errorf("%s: no such file or directory", path.Join(parts[:i+1]...))
		case next.typ == "symlink":
			target := next.target
			if !path.IsAbs(target) {
				target = path.Join("/", curPath, target)
			}
			rest := path.Join(parts[i+1:]...)
			return t.resolve(strings.TrimPrefix(path.Join(path.Clean(target), rest), "/"), create, depth+1)
		case next.typ != "dir":
			return nil, fmt.Errorf("%s is a %s, not a directory", path.Join(parts[:i+1]...), next.typ)
		}
		cur, curPath = next, path.Join(curPath, el)
	}
	return cur, nil
}

// lookup finds the inode at p without following a final symlink.
func (t *tree) lookup(p string) (*inode, error) {
	if p == "." {
		return t.root, nil
	}
	dirName, base := path.Split(p)
	d, err := t.resolve(strings.TrimSuffix(dirName, "/"), false, 0)
	if err != nil {
		return nil, err
	}
	if n := d.children[base]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%s: no such file or directory", p)
}

func (t *tree) manifest() *Manifest {
	m := &Manifest{Entries: map[string]*Entry{}, Dropped: t.dropped, Contents: t.contents}
	names := map[*inode][]string{}
	var walk func(p string, n *inode)
	walk = func(p string, n *inode) {
		e := &Entry{Path: p, Type: n.typ, Mode: n.mode, UID: n.uid, GID: n.gid, MTime: n.mtime, Size: n.size,
			SHA256: n.sum, Target: n.target, Dev: n.dev, Xattrs: n.xattrs, Implicit: n.implicit}
		m.Entries[p] = e
		if n.typ == "file" {
			names[n] = append(names[n], p)
		}
		for name, c := range n.children {
			cp := name
			if p != "." {
				cp = p + "/" + name
			}
			walk(cp, c)
		}
	}
	walk(".", t.root)
	for _, ps := range names {
		if len(ps) > 1 {
			sort.Strings(ps)
			for _, p := range ps {
				m.Entries[p].Hardlink = ps[0]
			}
		}
	}
	return m
}

// quote writes a path or link target as it is when it has no space,
// quote, backslash or control character, else as a Go string literal.
func quote(s string) string {
	for _, c := range s {
		if c <= ' ' || c == '"' || c == '\\' || c == 0x7f || c > 0x7e {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// String is the entry's manifest line:
//
//	<path> <type> <mode> <uid>:<gid> <mtime> [details]
//
// with mode in octal (4 digits, "-" for symlinks) and details by type:
// file "<size> <sha256 prefix>" then "hardlink=<path>" and
// "xattr=<name>=<hash>" when present; symlink "-> <target>"; char and
// block "<major>,<minor>". An implicit directory ends in "implicit".
func (e *Entry) String() string {
	mode := fmt.Sprintf("%04o", e.Mode)
	if e.Type == "symlink" {
		mode = "-"
	}
	s := fmt.Sprintf("%s %s %s %d:%d %d", quote(e.Path), e.Type, mode, e.UID, e.GID, e.MTime)
	switch e.Type {
	case "file":
		s += fmt.Sprintf(" %d %s", e.Size, e.SHA256)
		if e.Hardlink != "" {
			s += " hardlink=" + quote(e.Hardlink)
		}
	case "symlink":
		s += " -> " + quote(e.Target)
	case "char", "block":
		s += " " + e.Dev
	}
	for _, x := range e.Xattrs {
		s += " xattr=" + x
	}
	if e.Implicit {
		s += " implicit"
	}
	return s
}

// Paths returns the manifest's paths, sorted.
func (m *Manifest) Paths() []string {
	var ps []string
	for p := range m.Entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Format writes the manifest: header comment lines, one "# dropped: ..."
// line per dropped entry, then one line per path, sorted by path.
func (m *Manifest) Format(header ...string) []byte {
	var b strings.Builder
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	for _, d := range m.Dropped {
		b.WriteString("# dropped: " + d + "\n")
	}
	for _, p := range m.Paths() {
		b.WriteString(m.Entries[p].String())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Recorded is a manifest file as the recording wrote it.
type Recorded struct {
	Header   map[string]string // "# key: value" lines
	Error    string            // the build failed with this error
	Dropped  []string
	Lines    map[string]string // path -> manifest line
	Manifest *Manifest         // parsed back from Lines (nil with Error)
}

// Parse reads a recorded manifest file.
func Parse(dt []byte) (*Recorded, error) {
	rec := &Recorded{Header: map[string]string{}, Lines: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(string(dt)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	m := &Manifest{Entries: map[string]*Entry{}}
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "# "); ok {
			k, v, _ := strings.Cut(c, ": ")
			switch k {
			case "dropped":
				rec.Dropped = append(rec.Dropped, v)
			case "error":
				rec.Error = v
			default:
				rec.Header[k] = v
			}
			continue
		}
		if line == "" {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, err
		}
		rec.Lines[e.Path] = line
		m.Entries[e.Path] = e
	}
	if rec.Error == "" {
		m.Dropped = rec.Dropped
		rec.Manifest = m
	}
	return rec, sc.Err()
}

// parseLine reads a manifest line back (the inverse of Entry.String).
func parseLine(line string) (*Entry, error) {
	fields, err := splitFields(line)
	if err != nil || len(fields) < 5 {
		return nil, fmt.Errorf("manifest line %q: %v", line, err)
	}
	e := &Entry{Path: fields[0], Type: fields[1]}
	if fields[2] != "-" {
		if e.Mode, err = strconv.ParseInt(fields[2], 8, 64); err != nil {
			return nil, fmt.Errorf("manifest line %q: mode: %w", line, err)
		}
	}
	u, g, _ := strings.Cut(fields[3], ":")
	e.UID, _ = strconv.Atoi(u)
	e.GID, _ = strconv.Atoi(g)
	e.MTime, _ = strconv.ParseInt(fields[4], 10, 64)
	rest := fields[5:]
	switch e.Type {
	case "file":
		if len(rest) < 2 {
			return nil, fmt.Errorf("manifest line %q: no size and hash", line)
		}
		e.Size, _ = strconv.ParseInt(rest[0], 10, 64)
		e.SHA256 = rest[1]
		rest = rest[2:]
	case "symlink":
		if len(rest) < 2 || rest[0] != "->" {
			return nil, fmt.Errorf("manifest line %q: no link target", line)
		}
		e.Target = rest[1]
		rest = rest[2:]
	case "char", "block":
		if len(rest) < 1 {
			return nil, fmt.Errorf("manifest line %q: no device number", line)
		}
		e.Dev, rest = rest[0], rest[1:]
	}
	for _, f := range rest {
		switch {
		case strings.HasPrefix(f, "hardlink="):
			e.Hardlink = strings.TrimPrefix(f, "hardlink=")
		case strings.HasPrefix(f, "xattr="):
			e.Xattrs = append(e.Xattrs, strings.TrimPrefix(f, "xattr="))
		case f == "implicit":
			e.Implicit = true
		default:
			return nil, fmt.Errorf("manifest line %q: unknown field %q", line, f)
		}
	}
	return e, nil
}

// splitFields splits on spaces, reading Go-quoted fields (and key="..."
// values) back.
func splitFields(s string) ([]string, error) {
	var out []string
	for s != "" {
		if s[0] == ' ' {
			s = s[1:]
			continue
		}
		prefix := ""
		if i := strings.Index(s, `="`); i >= 0 && !strings.Contains(s[:i], " ") {
			prefix, s = s[:i+1], s[i+1:]
		}
		if s[0] == '"' {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, err
			}
			v, _ := strconv.Unquote(q)
			out = append(out, prefix+v)
			s = s[len(q):]
			continue
		}
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		out = append(out, prefix+s[:end])
		s = s[end:]
	}
	return out, nil
}

// Varying lists the files whose contents differ on every linuxkit run:
// the SBOM it writes by default names itself with a random UUID. Their
// hash is recorded as "varies".
var Varying = []string{"sbom.spdx.json"}

// MarkVarying replaces the hash of the Varying files.
func MarkVarying(m *Manifest) {
	for _, p := range Varying {
		if e := m.Entries[p]; e != nil && e.Type == "file" {
			e.SHA256 = "varies"
		}
	}
}
