// Package iso9660 writes ISO 9660 images with Rock Ridge extensions (POSIX
// names, modes, owners, symlinks, device nodes, hard links and timestamps)
// and El Torito boot entries (BIOS no-emulation with an optional boot
// information table, as ISOLINUX needs, and EFI). The layout is computed
// from metadata first and the image is then written front to back to an
// io.Writer, one file's contents at a time, so memory use does not grow
// with the contents. The same inputs give the same bytes.
//
// Limits: a file must be smaller than 4 GiB (no multi-extent files); a
// symlink target is at most 4095 bytes (PATH_MAX - 1, as Linux reads it
// back); deep directories are not relocated (as genisoimage -D: Linux and
// libisofs read them); there is no Joliet tree. Rock Ridge data that does
// not fit in a directory record goes to continuation areas of at most one
// sector each (Linux refuses one that crosses a sector boundary), chained
// with CE entries.
package iso9660

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// SectorSize is the ISO 9660 logical block size.
const SectorSize = 2048

// File is one entry of the image. Parent directories must come before
// their children.
type File struct {
	fstree.Entry
	Src    string // host file with the contents of a regular file
	Data   []byte // contents when Src is empty
	Hidden bool   // contents only, no directory record (an El Torito image)
}

// Platform is an El Torito platform ID.
type Platform byte

const (
	// X86 is a PC BIOS boot entry.
	X86 Platform = 0
	// EFI is a UEFI boot entry.
	EFI Platform = 0xef
)

// BootEntry is an El Torito no-emulation boot entry.
type BootEntry struct {
	Path     string // the boot image: the Path of a regular File
	Platform Platform
	// LoadSectors is the number of 512-byte sectors the firmware loads (4
	// for ISOLINUX). 0 means the whole image; an image of more than 65535
	// sectors gets 1, which EFI firmware reads as "up to the end of the
	// disc" and then sizes from the image's own FAT header.
	LoadSectors uint16
	// BootInfoTable patches the El Torito boot information table into the
	// image at byte 8, as ISOLINUX requires. The image must be in Data.
	BootInfoTable bool
}

// Options describe the image.
type Options struct {
	VolumeID string    // up to 32 characters
	ModTime  time.Time // volume dates, and the time of the root directory
	Boot     []BootEntry
	// Catalog is the path of the El Torito boot catalog. Empty means a
	// hidden one. A listed File of that path is replaced by the catalog.
	Catalog string
	// SystemArea, when set, returns the first bytes of the image (at most
	// 16 sectors, e.g. an isohybrid MBR) once the layout is known: lba
	// gives a file's first sector, total the image's size in bytes after
	// padding.
	SystemArea func(lba func(path string) (uint32, bool), total int64) ([]byte, error)
	// PadTo rounds the image up to a multiple of this many bytes with
	// zeros (e.g. 1 MiB, a cylinder of the isohybrid geometry); the
	// volume size recorded in the image does not include the padding.
	PadTo int64
}

// Size is the image's length in bytes, padding included.
func (img *image) size() int64 {
	n := int64(img.total) * SectorSize
	if p := img.o.PadTo; p > 0 {
		n = (n + p - 1) / p * p
	}
	return n
}

type node struct {
	f        *File
	isoName  string // ISO 9660 identifier ("NAME.EXT;1" for files)
	parent   *node
	children []*node
	dirNum   int
	subdirs  int
	lba      uint32
	size     uint32
	ino      uint32
}

func (n *node) isDir() bool { return n.f.Mode.IsDir() }

// record is one directory record.
type record struct {
	ident []byte    // "\x00" for ".", "\x01" for ".."
	self  *node     // whose extent and metadata the record shows
	su    []byte    // system use area; a CE entry, if any, is the last 28 bytes
	ce    []*ceArea // continuation areas, each but the last ending in a CE entry
}

// ceArea is one continuation area: at most a sector, never crossing one.
type ceArea struct {
	data     []byte
	lba, off uint32
}

// ceLen is the size of a CE entry; maxCEAreas bounds the chain of one
// record (Linux stops after 32).
const (
	ceLen      = 28
	maxCEAreas = 16
)

func (r *record) length() int {
	n := 33 + len(r.ident)
	if len(r.ident)%2 == 0 {
		n++
	}
	return n + len(r.su)
}

type image struct {
	o        Options
	root     *node
	byPath   map[string]*node
	paths    []string // sorted
	dirs     []*node  // path table order
	recs     map[*node][]*record
	data     []*node // regular files with an extent, in extent order
	catalog  *node
	boots    []*node
	ptSize   uint32
	ptL, ptM uint32
	ceAreas  []*ceArea
	ceSize   uint32
	total    uint32
}

// Write writes the image of files to w.
func Write(w io.Writer, files []File, o Options) error {
	img, err := layout(files, o)
	if err != nil {
		return err
	}
	return img.write(w)
}

func layout(files []File, o Options) (*image, error) {
	img := &image{o: o, byPath: map[string]*node{}, recs: map[*node][]*record{}}
	img.root = &node{f: &File{Entry: fstree.Entry{Mode: fs.ModeDir | 0o755, ModTime: o.ModTime}}}
	img.byPath[""] = img.root
	for i := range files {
		f := &files[i]
		p := path.Clean(f.Path)
		if f.Path == "" || p != f.Path || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("path %q: want a clean relative path", f.Path)
		}
		if _, dup := img.byPath[p]; dup {
			return nil, fmt.Errorf("path %q given twice", f.Path)
		}
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		parent, ok := img.byPath[dir]
		if !ok || !parent.isDir() {
			return nil, fmt.Errorf("path %q: its directory is not listed before it", f.Path)
		}
		if f.Mode.IsRegular() {
			if f.Src == "" {
				f.Size = int64(len(f.Data))
			}
			if f.Size >= 1<<32 {
				return nil, fmt.Errorf("%s: %d bytes; an ISO 9660 file must be smaller than 4 GiB", f.Path, f.Size)
			}
		}
		n := &node{f: f, parent: parent}
		img.byPath[p] = n
		if !f.Hidden {
			parent.children = append(parent.children, n)
		}
	}
	if err := img.bootNodes(); err != nil {
		return nil, err
	}
	img.paths = make([]string, 0, len(img.byPath))
	for p := range img.byPath {
		img.paths = append(img.paths, p)
	}
	sort.Strings(img.paths)

	img.name(img.root)
	img.dirs = []*node{img.root}
	for i := 0; i < len(img.dirs); i++ {
		d := img.dirs[i]
		d.dirNum = i + 1
		for _, c := range d.children {
			if c.isDir() {
				img.dirs = append(img.dirs, c)
			}
		}
	}
	if len(img.dirs) > 65535 {
		return nil, fmt.Errorf("%d directories: the path table holds at most 65535", len(img.dirs))
	}
	img.serials()

	// Records depend on names and metadata only (a CE entry has a fixed
	// size), so directory sizes are known before any LBA.
	for _, d := range img.dirs {
		recs, err := img.dirRecords(d)
		if err != nil {
			return nil, err
		}
		img.recs[d] = recs
		d.size = uint32(packRecords(recs, nil)) * SectorSize
	}

	next := uint32(16 + 2) // system area, primary and terminator
	if len(img.boots) > 0 {
		next++ // boot record
	}
	for _, d := range img.dirs {
		img.ptSize += uint32(8 + len(ptIdent(d)) + len(ptIdent(d))%2)
	}
	ptSectors := sectors(img.ptSize)
	img.ptL, img.ptM = next, next+ptSectors
	next += 2 * ptSectors
	for _, d := range img.dirs {
		d.lba = next
		next += d.size / SectorSize
	}
	// Continuation areas, packed so none straddles a sector.
	ceStart, off := next, uint32(0)
	for _, d := range img.dirs {
		for _, r := range img.recs[d] {
			for _, a := range r.ce {
				if off%SectorSize+uint32(len(a.data)) > SectorSize {
					off = sectors(off) * SectorSize
				}
				a.lba, a.off = ceStart+off/SectorSize, off%SectorSize
				off += uint32(len(a.data))
				img.ceAreas = append(img.ceAreas, a)
			}
		}
	}
	img.ceSize = sectors(off) * SectorSize
	next += sectors(off)
	if img.catalog != nil {
		img.catalog.lba, img.catalog.size = next, SectorSize
		next++
	}
	// File data in path order; hard links share the first path's extent;
	// empty files have extent 0.
	first := map[int]*node{}
	for _, p := range img.paths {
		n := img.byPath[p]
		if !n.f.Mode.IsRegular() || n == img.catalog {
			continue
		}
		n.size = uint32(n.f.Size)
		if g := n.f.LinkGroup; g != 0 {
			if f, ok := first[g]; ok {
				n.lba = f.lba
				continue
			}
			first[g] = n
		}
		if n.size == 0 {
			continue
		}
		n.lba = next
		next += sectors(n.size)
		img.data = append(img.data, n)
	}
	img.total = next
	return img, nil
}

func sectors(n uint32) uint32 { return (n + SectorSize - 1) / SectorSize }

func (img *image) bootNodes() error {
	if len(img.o.Boot) == 0 {
		return nil
	}
	cat, hidden := img.o.Catalog, false
	if cat == "" {
		cat, hidden = "boot.catalog", true
	}
	if _, listed := img.byPath[cat]; !listed {
		dir := path.Dir(cat)
		if dir == "." {
			dir = ""
		}
		parent, ok := img.byPath[dir]
		if !ok || !parent.isDir() {
			return fmt.Errorf("boot catalog %q: its directory is not in the image", cat)
		}
		n := &node{f: &File{Entry: fstree.Entry{Path: cat, Mode: 0o444, ModTime: img.o.ModTime}, Hidden: hidden}, parent: parent}
		img.byPath[cat] = n
		if !hidden {
			parent.children = append(parent.children, n)
		}
	}
	n, ok := img.byPath[cat]
	if !ok || !n.f.Mode.IsRegular() {
		return fmt.Errorf("boot catalog %q: not a regular file of the image", cat)
	}
	n.f.Src, n.f.Data, n.f.Size = "", nil, SectorSize
	img.catalog = n
	for _, b := range img.o.Boot {
		bn, ok := img.byPath[b.Path]
		if !ok || !bn.f.Mode.IsRegular() || bn == n {
			return fmt.Errorf("boot image %q: not a regular file of the image", b.Path)
		}
		if b.BootInfoTable && (bn.f.Src != "" || len(bn.f.Data) < 64) {
			return fmt.Errorf("boot image %q: a boot information table needs the image in memory (at least 64 bytes)", b.Path)
		}
		img.boots = append(img.boots, bn)
	}
	return nil
}

// name gives the children of d unique ISO 9660 identifiers and sorts them
// by identifier, recursively.
func (img *image) name(d *node) {
	used := map[string]bool{}
	// next is, per base, the suffix number to try first: a directory of n
	// names with one base costs n tries, not n²/2.
	next := map[string]int{}
	for _, c := range d.children {
		base := isoBase(path.Base(c.f.Path), c.isDir())
		id := base
		if used[id] {
			stem, ext := base, ""
			if j := strings.LastIndex(base, "."); j >= 0 {
				stem, ext = base[:j], base[j:]
			}
			for i := max(next[base], 1); used[id]; i++ {
				suffix := "_" + strconv.Itoa(i)
				id = stem[:min(len(stem), 30-len(ext)-len(suffix))] + suffix + ext
				next[base] = i + 1
			}
		}
		used[id] = true
		c.isoName = id
		if !c.isDir() {
			c.isoName += ";1"
		}
	}
	sort.Slice(d.children, func(i, j int) bool { return d.children[i].isoName < d.children[j].isoName })
	for _, c := range d.children {
		if c.isDir() {
			d.subdirs++
			img.name(c)
		}
	}
}

// isoBase maps a name to level 2 d-characters: A-Z, 0-9 and "_", with at
// most one "." (files only) and at most 30 characters.
func isoBase(name string, dir bool) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '.' && !dir:
			b.WriteRune('.')
		default:
			b.WriteRune('_')
		}
	}
	s := b.String()
	stem, ext := s, ""
	if i := strings.LastIndex(s, "."); i >= 0 {
		stem, ext = strings.ReplaceAll(s[:i], ".", "_"), s[i:]
		if len(ext) > 9 {
			ext = ext[:9]
		}
	}
	if stem == "" {
		stem = "_"
	}
	return stem[:min(len(stem), 30-len(ext))] + ext
}

func ptIdent(d *node) string {
	if d.parent == nil {
		return "\x00"
	}
	return d.isoName
}

// serials numbers every node for Rock Ridge (PX file serial number);
// hard links share one.
func (img *image) serials() {
	next, groups := uint32(1), map[int]uint32{}
	for _, p := range img.paths {
		n := img.byPath[p]
		if g := n.f.LinkGroup; g != 0 {
			if s, ok := groups[g]; ok {
				n.ino = s
				continue
			}
			groups[g] = next
		}
		n.ino = next
		next++
	}
}

// dirRecords builds the records of d: ".", "..", then its children.
func (img *image) dirRecords(d *node) ([]*record, error) {
	parent := d.parent
	if parent == nil {
		parent = d
	}
	recs := []*record{{ident: []byte{0}, self: d}, {ident: []byte{1}, self: parent}}
	for _, c := range d.children {
		recs = append(recs, &record{ident: []byte(c.isoName), self: c})
	}
	for i, r := range recs {
		var entries [][]byte
		if d == img.root && i == 0 {
			entries = append(entries, suspSP())
		}
		ents, err := rockRidge(r.self, i >= 2)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.self.f.Path, err)
		}
		entries = append(entries, ents...)
		var ce [][]byte
		if d == img.root && i == 0 {
			ce = append(ce, suspER())
		}
		if err := r.place(entries, ce); err != nil {
			return nil, fmt.Errorf("%s: %w", r.self.f.Path, err)
		}
	}
	return recs, nil
}

// place fits entries into the record's system use area (at most 255 bytes
// for the whole record), moving the rest, and any forced continuation
// entries, to continuation areas behind a CE entry: as many as needed, of
// at most a sector each, each but the last ending in a CE entry that
// points to the next.
func (r *record) place(entries, forced [][]byte) error {
	room := 255 - r.length()
	total := 0
	for _, e := range entries {
		total += len(e)
	}
	if total <= room && len(forced) == 0 {
		for _, e := range entries {
			r.su = append(r.su, e...)
		}
		return nil
	}
	used := 0
	i := 0
	for ; i < len(entries) && used+len(entries[i]) <= room-ceLen; i++ {
		r.su = append(r.su, entries[i]...)
		used += len(entries[i])
	}
	r.su = append(r.su, suspCE(0, 0, 0)...)
	rest := append(entries[i:len(entries):len(entries)], forced...)
	cur := &ceArea{}
	for k, e := range rest {
		need := len(e)
		if k < len(rest)-1 {
			need += ceLen // room for the CE to the next area, if one follows
		}
		if len(cur.data)+need > SectorSize {
			cur.data = append(cur.data, suspCE(0, 0, 0)...)
			r.ce = append(r.ce, cur)
			cur = &ceArea{}
		}
		cur.data = append(cur.data, e...)
	}
	r.ce = append(r.ce, cur)
	if len(r.ce) > maxCEAreas {
		return fmt.Errorf("%d bytes of Rock Ridge data: more than %d continuation areas", total, maxCEAreas)
	}
	return nil
}

// packRecords lays records into sectors (none straddles a sector
// boundary), calling emit with each record's sector and offset, and
// returns the number of sectors.
func packRecords(recs []*record, emit func(r *record, sector, off int)) int {
	sector, used := 0, 0
	for _, r := range recs {
		n := r.length()
		if used+n > SectorSize {
			sector++
			used = 0
		}
		if emit != nil {
			emit(r, sector, used)
		}
		used += n
	}
	return sector + 1
}

func (img *image) write(w io.Writer) error {
	bw := &fstree.CountingWriter{W: w}
	sa := make([]byte, 16*SectorSize)
	if img.o.SystemArea != nil {
		lba := func(p string) (uint32, bool) {
			n, ok := img.byPath[p]
			if !ok {
				return 0, false
			}
			return n.lba, true
		}
		b, err := img.o.SystemArea(lba, img.size())
		if err != nil {
			return fmt.Errorf("system area: %w", err)
		}
		if len(b) > len(sa) {
			return fmt.Errorf("system area of %d bytes: at most %d fit", len(b), len(sa))
		}
		copy(sa, b)
	}
	if err := write(bw, sa); err != nil {
		return err
	}
	if err := write(bw, img.pvd()); err != nil {
		return err
	}
	if len(img.boots) > 0 {
		if err := write(bw, img.bootRecord()); err != nil {
			return err
		}
	}
	term := make([]byte, SectorSize)
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	if err := write(bw, term); err != nil {
		return err
	}
	for _, bigEndian := range []bool{false, true} {
		pt := img.pathTable(bigEndian)
		if err := write(bw, pad(pt)); err != nil {
			return err
		}
	}
	for _, d := range img.dirs {
		buf := make([]byte, d.size)
		packRecords(img.recs[d], func(r *record, sector, off int) {
			copy(buf[sector*SectorSize+off:], img.encodeRecord(r))
		})
		if err := write(bw, buf); err != nil {
			return err
		}
	}
	ce := make([]byte, img.ceSize)
	base := uint32(0)
	if len(img.ceAreas) > 0 {
		base = img.ceAreas[0].lba
	}
	for _, a := range img.ceAreas {
		copy(ce[(a.lba-base)*SectorSize+a.off:], a.data)
	}
	for _, d := range img.dirs {
		for _, r := range img.recs[d] {
			for i := 0; i+1 < len(r.ce); i++ {
				a, next := r.ce[i], r.ce[i+1]
				at := (a.lba-base)*SectorSize + a.off + uint32(len(a.data)) - ceLen
				copy(ce[at:], suspCE(next.lba, next.off, uint32(len(next.data))))
			}
		}
	}
	if err := write(bw, ce); err != nil {
		return err
	}
	if img.catalog != nil {
		if err := write(bw, img.bootCatalog()); err != nil {
			return err
		}
	}
	buf := make([]byte, 1<<20)
	for _, n := range img.data {
		if uint64(bw.N) != uint64(n.lba)*SectorSize {
			return fmt.Errorf("internal error: %s at byte %d, laid out at sector %d", n.f.Path, bw.N, n.lba)
		}
		if err := img.writeData(bw, n, buf); err != nil {
			return fmt.Errorf("%s: %w", n.f.Path, err)
		}
		if err := bw.Zeros(int64(sectors(n.size)*SectorSize - n.size)); err != nil {
			return err
		}
	}
	if uint64(bw.N) != uint64(img.total)*SectorSize {
		return fmt.Errorf("internal error: wrote %d bytes, laid out %d sectors", bw.N, img.total)
	}
	return bw.Zeros(img.size() - bw.N)
}

func (img *image) writeData(w *fstree.CountingWriter, n *node, buf []byte) error {
	if n.f.Src == "" {
		data := n.f.Data
		for i, b := range img.o.Boot {
			if img.boots[i] == n && b.BootInfoTable {
				data = bootInfoTable(data, n.lba)
			}
		}
		_, err := w.Write(data)
		return err
	}
	return fstree.CopyContents(w, n.f.Src, n.f.Size, buf)
}

// bootInfoTable returns a copy of image with the El Torito boot
// information table at byte 8: the primary volume descriptor's sector, the
// image's sector, its length and the 32-bit sum of its words from byte 64.
func bootInfoTable(image []byte, lba uint32) []byte {
	out := append([]byte(nil), image...)
	var sum uint32
	for i := 64; i < len(out); i += 4 {
		var word [4]byte
		copy(word[:], out[i:])
		sum += binary.LittleEndian.Uint32(word[:])
	}
	clear(out[8:64])
	binary.LittleEndian.PutUint32(out[8:], 16)
	binary.LittleEndian.PutUint32(out[12:], lba)
	binary.LittleEndian.PutUint32(out[16:], uint32(len(out)))
	binary.LittleEndian.PutUint32(out[20:], sum)
	return out
}

func write(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}

func pad(b []byte) []byte {
	return append(b, make([]byte, int(sectors(uint32(len(b))))*SectorSize-len(b))...)
}

// FromTree turns entries walked under root (fstree.Walk) into Files whose
// contents are read from root; prefix, if not empty, is prepended to every
// path (its directories must be listed separately).
func FromTree(root string, entries []fstree.Entry, prefix string) []File {
	out := make([]File, 0, len(entries))
	for _, e := range entries {
		f := File{Entry: e}
		if e.Mode.IsRegular() {
			f.Src = path.Join(root, e.Path)
		}
		if prefix != "" {
			f.Path = path.Join(prefix, e.Path)
		}
		out = append(out, f)
	}
	return out
}
