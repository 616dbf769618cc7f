package disk

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// The FAT writer. Every file is known before anything is written, so the
// layout is computed first: the directories and then the files each get
// one contiguous run of clusters, in order, from cluster 2. The FAT is
// then a list of runs, written once, and each file's contents are copied
// once, front to back, into its run: time is linear in the data. Clusters
// after the last run are left unwritten (zero: the disk file is new and
// sparse), which is what a free cluster is.

const (
	fatSector   = 512
	maxFATFile  = 1<<32 - 1 // a directory entry's size field is 32 bits
	dirEntry    = 32
	maxDirSlots = 65536 // entries one directory may hold (FAT specification)
	attrDir     = 0x10
	attrArchive = 0x20
	attrLabel   = 0x08
	attrLFN     = 0x0f
)

// fatGeometry is the layout of one FAT filesystem, in sectors.
type fatGeometry struct {
	fat16       bool
	total       int64 // sectors in the filesystem
	hidden      int64 // sectors before it on the disk (the partition start)
	reserved    int64
	nfats       int64
	rootEntries int64 // FAT16's fixed root directory; 0 for FAT32
	spc         int64 // sectors per cluster
	fatSectors  int64 // sectors of one FAT
	clusters    int64 // data clusters, numbered from 2
}

func (g fatGeometry) clusterBytes() int64 { return g.spc * fatSector }
func (g fatGeometry) rootSectors() int64  { return g.rootEntries * dirEntry / fatSector }
func (g fatGeometry) entryBytes() int64 {
	if g.fat16 {
		return 2
	}
	return 4
}

// dataStart is the byte offset of cluster 2 from the filesystem's start.
func (g fatGeometry) dataStart() int64 {
	return (g.reserved + g.nfats*g.fatSectors + g.rootSectors()) * fatSector
}

func (g fatGeometry) clusterOffset(c int64) int64 {
	return g.dataStart() + (c-2)*g.clusterBytes()
}

// clusterSizes maps filesystem sizes to cluster sizes: a filesystem of up
// to upTo bytes has clusters of bytes bytes.
type clusterSizes []struct{ upTo, bytes int64 }

// The cluster sizes mkfs.fat and Microsoft's format pick for FAT16 and
// FAT32; above the last limit, clusters are 32 KiB.
var (
	fat16ClusterSizes = clusterSizes{{32 << 20, 1 << 10}, {128 << 20, 2 << 10}, {256 << 20, 4 << 10}, {512 << 20, 8 << 10}, {1 << 30, 16 << 10}}
	fat32ClusterSizes = clusterSizes{{260 << 20, 512}, {8 << 30, 4 << 10}, {16 << 30, 8 << 10}, {32 << 30, 16 << 10}}
)

// clusterSize is the cluster size in bytes for a filesystem of size bytes.
func clusterSize(size int64, sizes clusterSizes) int64 {
	for _, s := range sizes {
		if size <= s.upTo {
			return s.bytes
		}
	}
	return 32 << 10
}

// fatLayout chooses the geometry of a FAT16 or FAT32 filesystem of size
// bytes: cluster sizes as mkfs.fat and Microsoft's format pick them, two
// FATs, each the smallest that has an entry for every data cluster plus
// the two reserved entries.
func fatLayout(size, hidden int64, fat16 bool) (fatGeometry, error) {
	g := fatGeometry{fat16: fat16, total: size / fatSector, hidden: hidden / fatSector, nfats: 2}
	if g.total > 1<<32-1 {
		return g, fmt.Errorf("%d bytes: a FAT filesystem has at most 2^32-1 sectors (2 TiB)", size)
	}
	sizes := fat32ClusterSizes
	g.reserved = 32
	if fat16 {
		sizes = fat16ClusterSizes
		g.reserved, g.rootEntries = 4, 512
	}
	clusterBytes := clusterSize(size, sizes)
	g.spc = clusterBytes / fatSector
	avail := g.total - g.reserved - g.rootSectors()
	if avail <= 0 {
		return g, fmt.Errorf("%d bytes: too small for a FAT filesystem", size)
	}
	perSector := fatSector / g.entryBytes()
	fits := func(x int64) bool { return x*perSector >= (avail-g.nfats*x)/g.spc+2 }
	// x*perSector >= (avail - nfats*x)/spc + 2 holds from this x on (the
	// bound without the floor); the loops settle the rounding.
	x := (avail + 2*g.spc + g.spc*perSector + g.nfats - 1) / (g.spc*perSector + g.nfats)
	for !fits(x) {
		x++
	}
	for x > 1 && fits(x-1) {
		x--
	}
	g.fatSectors = x
	g.clusters = (avail - g.nfats*x) / g.spc
	switch {
	case fat16 && (g.clusters < 4085 || g.clusters > 65524):
		return g, fmt.Errorf("%d bytes give %d clusters of %d bytes: FAT16 needs 4085 to 65524", size, g.clusters, clusterBytes)
	case !fat16 && (g.clusters < 65525 || g.clusters > 0x0ffffff5):
		return g, fmt.Errorf("%d bytes give %d clusters of %d bytes: FAT32 needs 65525 to 268435445", size, g.clusters, clusterBytes)
	}
	return g, nil
}

// fatNode is a file or directory of the filesystem.
type fatNode struct {
	name     string // the long name
	dir      bool
	file     *File
	size     int64
	children []*fatNode
	parent   *fatNode
	short    [11]byte
	lfn      bool  // has long-name entries
	first    int64 // first cluster; 0 for an empty file
	count    int64 // clusters
	slots    int64 // directory entries, for a directory
	byName   map[string]*fatNode
	shorts   map[[11]byte]bool
	tails    map[string]int
	isRoot   bool
}

// buildTree makes the directory tree of files; directories are the
// parents that the paths name.
func buildTree(files []File) (*fatNode, error) {
	root := &fatNode{dir: true, isRoot: true}
	var add func(parent *fatNode, name string, n *fatNode) (*fatNode, error)
	add = func(parent *fatNode, name string, n *fatNode) (*fatNode, error) {
		key := strings.ToUpper(name)
		if old, ok := parent.byName[key]; ok {
			if n == nil && old.dir {
				return old, nil
			}
			return nil, fmt.Errorf("%q: FAT names ignore case, and %q is in the same directory", name, old.name)
		}
		if err := checkLongName(name); err != nil {
			return nil, err
		}
		if n == nil {
			n = &fatNode{dir: true}
		}
		n.name, n.parent = name, parent
		if parent.byName == nil {
			parent.byName = map[string]*fatNode{}
		}
		parent.byName[key] = n
		parent.children = append(parent.children, n)
		return n, nil
	}
	for i := range files {
		f := &files[i]
		size, err := f.size()
		if err != nil {
			return nil, err
		}
		if size > maxFATFile {
			return nil, fmt.Errorf("%s: %d bytes; a FAT file holds at most %d bytes (4 GiB - 1)", f.Path, size, int64(maxFATFile))
		}
		elems := strings.Split(f.Path, "/")
		dir := root
		for _, d := range elems[:len(elems)-1] {
			if dir, err = add(dir, d, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			if !dir.dir {
				return nil, fmt.Errorf("%s: %s is a file", f.Path, d)
			}
		}
		if _, err := add(dir, elems[len(elems)-1], &fatNode{file: f, size: size}); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	var name func(d *fatNode) error
	name = func(d *fatNode) error {
		sort.Slice(d.children, func(i, j int) bool { return d.children[i].name < d.children[j].name })
		d.shorts, d.tails = map[[11]byte]bool{}, map[string]int{}
		d.slots = 2 // "." and ".."
		if d.isRoot {
			d.slots = 1 // the volume label
		}
		for _, c := range d.children {
			d.shortName(c)
			d.slots++
			if c.lfn {
				d.slots += int64(len(utf16.Encode([]rune(c.name)))+12) / 13
			}
			if c.dir {
				if err := name(c); err != nil {
					return err
				}
			}
		}
		if d.slots > maxDirSlots {
			return fmt.Errorf("directory %q: %d entries, a FAT directory holds at most %d", d.path(), d.slots, maxDirSlots)
		}
		return nil
	}
	if err := name(root); err != nil {
		return nil, err
	}
	return root, nil
}

func (n *fatNode) path() string {
	if n.parent == nil {
		return "/"
	}
	return path.Join(n.parent.path(), n.name)
}

// checkLongName refuses names a FAT long name cannot hold.
func checkLongName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("name %q not allowed", name)
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Errorf("name %q: FAT drops trailing dots and spaces", name)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) || r == 0x7f {
			return fmt.Errorf("name %q: character %q not allowed in FAT names", name, r)
		}
	}
	if len(utf16.Encode([]rune(name))) > 255 {
		return fmt.Errorf("name %q: longer than FAT's 255 characters", name)
	}
	return nil
}

// shortChar maps r to a character allowed in an 8.3 name, or 0.
func shortChar(r rune) byte {
	switch {
	case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return byte(r)
	case r >= 'a' && r <= 'z':
		return byte(r - 'a' + 'A')
	case r < 0x80 && strings.ContainsRune("!#$%&'()-@^_`{}~", r):
		return byte(r)
	}
	return 0
}

// shortName gives c, a child of d, a unique 8.3 name: the name itself if
// it is an upper-case 8.3 name, otherwise one derived from it (with a
// "~N" tail when needed) and long-name entries holding the real name.
func (d *fatNode) shortName(c *fatNode) {
	base, ext := c.name, ""
	if i := strings.LastIndex(c.name, "."); i > 0 {
		base, ext = c.name[:i], c.name[i+1:]
	}
	clean := func(s string) (string, bool) {
		var b []byte
		lossless := true
		for _, r := range s {
			ch := shortChar(r)
			switch {
			case r == '.' || r == ' ':
				lossless = false
				continue
			case ch == 0:
				ch, lossless = '_', false
			}
			b = append(b, ch)
		}
		return string(b), lossless
	}
	b, okB := clean(base)
	e, okE := clean(ext)
	exact := okB && okE && len(b) >= 1 && len(b) <= 8 && len(e) <= 3 &&
		c.name == strings.ToUpper(c.name) && strings.Count(c.name, ".") <= 1
	c.lfn = !exact
	var sn [11]byte
	set := func(stem string) {
		copy(sn[:], "           ")
		copy(sn[:8], stem)
		copy(sn[8:], e[:min(len(e), 3)])
	}
	if okB && okE && len(b) >= 1 && len(b) <= 8 && len(e) <= 3 && strings.Count(c.name, ".") <= 1 {
		set(b)
		if !d.shorts[sn] {
			d.shorts[sn] = true
			c.short = sn
			return
		}
	}
	c.lfn = true // the short name is not the name: a long name says it
	if b == "" {
		b = "_"
	}
	key := b[:min(len(b), 6)] + "." + e
	for n := d.tails[key] + 1; ; n++ {
		tail := fmt.Sprintf("~%d", n)
		set(b[:min(len(b), 8-len(tail))] + tail)
		if !d.shorts[sn] {
			d.tails[key] = n
			d.shorts[sn] = true
			c.short = sn
			return
		}
	}
}

// lfnChecksum is the checksum of a short name that its long-name entries
// carry.
func lfnChecksum(sn [11]byte) byte {
	var sum byte
	for _, c := range sn {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// fatDate packs t (clamped to FAT's 1980 to 2107) into a FAT date and time.
func fatDate(t time.Time) (date, clock uint16) {
	t = t.UTC()
	switch {
	case t.Year() < 1980:
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > 2107:
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	clock = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, clock
}

// entry encodes one short directory entry.
func entry(name [11]byte, attr byte, first, size int64, mt time.Time) []byte {
	e := make([]byte, dirEntry)
	copy(e, name[:])
	e[11] = attr
	date, clock := fatDate(mt)
	binary.LittleEndian.PutUint16(e[14:], clock) // created
	binary.LittleEndian.PutUint16(e[16:], date)
	binary.LittleEndian.PutUint16(e[18:], date) // accessed
	binary.LittleEndian.PutUint16(e[20:], uint16(first>>16))
	binary.LittleEndian.PutUint16(e[22:], clock) // written
	binary.LittleEndian.PutUint16(e[24:], date)
	binary.LittleEndian.PutUint16(e[26:], uint16(first))
	binary.LittleEndian.PutUint32(e[28:], uint32(size))
	return e
}

// lfnEntries encodes the long-name entries of name, in the order they go
// on disk (the last part first).
func lfnEntries(name string, sum byte) []byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	padded := make([]uint16, n*13)
	for i := range padded {
		switch {
		case i < len(u):
			padded[i] = u[i]
		case i == len(u):
			padded[i] = 0
		default:
			padded[i] = 0xffff
		}
	}
	out := make([]byte, 0, n*dirEntry)
	offs := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	for seq := n; seq >= 1; seq-- {
		e := make([]byte, dirEntry)
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40
		}
		e[11], e[13] = attrLFN, sum
		for i, off := range offs {
			binary.LittleEndian.PutUint16(e[off:], padded[(seq-1)*13+i])
		}
		out = append(out, e...)
	}
	return out
}

// fatVolume is one FAT filesystem laid out, ready to be written.
type fatVolume struct {
	g      fatGeometry
	w      io.WriterAt
	off    int64 // byte offset of the filesystem in w
	label  [11]byte
	serial []byte
	mtime  time.Time
	root   *fatNode
	next   int64   // first cluster not allocated
	ends   []int64 // the last cluster of each run, ascending
}

// newFATVolume lays out the FAT16 or FAT32 filesystem of o.Files, size
// bytes, starting off bytes into the disk. Everything that can be wrong
// with the files (names, sizes, room) shows here, before anything is
// written.
func newFATVolume(size, off int64, o Options) (*fatVolume, error) {
	g, err := fatLayout(size, off, o.FAT16)
	if err != nil {
		return nil, err
	}
	root, err := buildTree(o.Files)
	if err != nil {
		return nil, err
	}
	v := &fatVolume{g: g, off: off, mtime: o.ModTime, root: root, next: 2}
	label := strings.ToUpper(o.Label)
	if label == "" {
		label = "NO NAME"
	}
	copy(v.label[:], "           ")
	for i, r := range label {
		if i >= 11 || shortChar(r) == 0 && r != ' ' {
			return nil, fmt.Errorf("volume label %q: up to 11 letters, digits and %s", o.Label, "!#$%&'()-@^_`{}~")
		}
		v.label[i] = byte(r)
	}
	if err := v.allocate(); err != nil {
		return nil, err
	}
	return v, nil
}

// write writes the filesystem to w with volume serial number serial.
func (v *fatVolume) write(ctx context.Context, w io.WriterAt, serial []byte) error {
	v.w, v.serial = w, serial
	if err := v.writeBoot(); err != nil {
		return err
	}
	if err := v.writeFAT(); err != nil {
		return err
	}
	if err := v.writeDir(v.root); err != nil {
		return err
	}
	return v.writeFiles(ctx, v.root)
}

// allocate gives every directory (FAT32's root first) and then every file
// its run of clusters.
func (v *fatVolume) allocate() error {
	cb := v.g.clusterBytes()
	take := func(n *fatNode, bytes int64) {
		n.count = (bytes + cb - 1) / cb
		if n.count == 0 {
			return
		}
		n.first = v.next
		v.next += n.count
		v.ends = append(v.ends, v.next-1)
	}
	var dirs func(d *fatNode) error
	dirs = func(d *fatNode) error {
		if d.isRoot && v.g.fat16 {
			if d.slots > v.g.rootEntries {
				return fmt.Errorf("root directory: %d entries, FAT16's holds %d", d.slots, v.g.rootEntries)
			}
		} else {
			take(d, max(d.slots*dirEntry, 1))
		}
		for _, c := range d.children {
			if c.dir {
				if err := dirs(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := dirs(v.root); err != nil {
		return err
	}
	var files func(d *fatNode)
	files = func(d *fatNode) {
		for _, c := range d.children {
			if c.dir {
				files(c)
			} else {
				take(c, c.size)
			}
		}
	}
	files(v.root)
	if used := v.next - 2; used > v.g.clusters {
		return fmt.Errorf("the files need %d clusters of %d bytes, the filesystem has %d", used, cb, v.g.clusters)
	}
	return nil
}

func (v *fatVolume) writeAt(b []byte, at int64) error {
	_, err := v.w.WriteAt(b, v.off+at)
	return err
}

// writeBoot writes the boot sector (and for FAT32 the FSInfo sector and
// the backups of both).
func (v *fatVolume) writeBoot() error {
	g := v.g
	b := make([]byte, fatSector)
	copy(b[3:], "MSWIN4.1")
	binary.LittleEndian.PutUint16(b[0x0b:], fatSector)
	b[0x0d] = byte(g.spc)
	binary.LittleEndian.PutUint16(b[0x0e:], uint16(g.reserved))
	b[0x10] = byte(g.nfats)
	binary.LittleEndian.PutUint16(b[0x11:], uint16(g.rootEntries))
	if g.fat16 && g.total < 1<<16 {
		binary.LittleEndian.PutUint16(b[0x13:], uint16(g.total))
	} else {
		binary.LittleEndian.PutUint32(b[0x20:], uint32(g.total))
	}
	b[0x15] = 0xf8 // fixed disk
	binary.LittleEndian.PutUint16(b[0x18:], 63)
	binary.LittleEndian.PutUint16(b[0x1a:], 255)
	binary.LittleEndian.PutUint32(b[0x1c:], uint32(g.hidden))
	ext := 0x24 // extended boot record
	if g.fat16 {
		copy(b, []byte{0xeb, 0x3c, 0x90})
		binary.LittleEndian.PutUint16(b[0x16:], uint16(g.fatSectors))
	} else {
		copy(b, []byte{0xeb, 0x58, 0x90})
		binary.LittleEndian.PutUint32(b[0x24:], uint32(g.fatSectors))
		binary.LittleEndian.PutUint32(b[0x2c:], 2) // root directory cluster
		binary.LittleEndian.PutUint16(b[0x30:], 1) // FSInfo sector
		binary.LittleEndian.PutUint16(b[0x32:], 6) // backup boot sector
		ext = 0x40
	}
	b[ext] = 0x80 // drive number
	b[ext+2] = 0x29
	copy(b[ext+3:ext+7], v.serial)
	copy(b[ext+7:], v.label[:])
	fsType := "FAT32   "
	if g.fat16 {
		fsType = "FAT16   "
	}
	copy(b[ext+18:], fsType)
	// Boot code for a machine that starts this sector anyway: halt.
	copy(b[ext+26:], []byte{0xfa, 0xf4, 0xeb, 0xfd}) // cli; hlt; jmp $-3
	b[510], b[511] = 0x55, 0xaa
	if err := v.writeAt(b, 0); err != nil {
		return err
	}
	if g.fat16 {
		return nil
	}
	info := make([]byte, fatSector)
	binary.LittleEndian.PutUint32(info[0:], 0x41615252)
	binary.LittleEndian.PutUint32(info[484:], 0x61417272)
	free, nextFree := g.clusters-(v.next-2), v.next
	if free == 0 {
		nextFree = 0xffffffff
	}
	binary.LittleEndian.PutUint32(info[488:], uint32(free))
	binary.LittleEndian.PutUint32(info[492:], uint32(nextFree))
	binary.LittleEndian.PutUint32(info[508:], 0xaa550000)
	for _, s := range []int64{0, 6} {
		if err := v.writeAt(b, s*fatSector); err != nil {
			return err
		}
		if err := v.writeAt(info, (s+1)*fatSector); err != nil {
			return err
		}
	}
	return nil
}

// writeFAT writes both FATs: the media and end-of-chain markers, then the
// allocated runs; the free rest stays zero.
func (v *fatVolume) writeFAT() error {
	g := v.g
	eb := g.entryBytes()
	eoc, media := uint32(0x0fffffff), uint32(0x0ffffff8)
	if g.fat16 {
		eoc, media = 0xffff, 0xfff8
	}
	const chunk = 1 << 16 // entries per write
	buf := make([]byte, chunk*eb)
	ends := v.ends
	for start := int64(0); start < v.next; start += chunk {
		n := min(chunk, v.next-start)
		for i := int64(0); i < n; i++ {
			c := start + i
			var val uint32
			switch {
			case c == 0:
				val = media
			case c == 1:
				val = eoc
			case len(ends) > 0 && ends[0] == c:
				val = eoc
				ends = ends[1:]
			default:
				val = uint32(c + 1)
			}
			if g.fat16 {
				binary.LittleEndian.PutUint16(buf[i*eb:], uint16(val))
			} else {
				binary.LittleEndian.PutUint32(buf[i*eb:], val)
			}
		}
		for f := int64(0); f < g.nfats; f++ {
			at := (g.reserved+f*g.fatSectors)*fatSector + start*eb
			if err := v.writeAt(buf[:n*eb], at); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeDir writes directory d and, recursively, the directories in it.
func (v *fatVolume) writeDir(d *fatNode) error {
	var b []byte
	if d.isRoot {
		b = append(b, entry(v.label, attrLabel, 0, 0, v.mtime)...)
	} else {
		dot, dotdot := [11]byte{}, [11]byte{}
		copy(dot[:], ".          ")
		copy(dotdot[:], "..         ")
		parent := d.parent.first // 0 for the root, as the specification asks
		if d.parent.isRoot {
			parent = 0
		}
		b = append(b, entry(dot, attrDir, d.first, 0, v.mtime)...)
		b = append(b, entry(dotdot, attrDir, parent, 0, v.mtime)...)
	}
	for _, c := range d.children {
		if c.lfn {
			b = append(b, lfnEntries(c.name, lfnChecksum(c.short))...)
		}
		attr, size := byte(attrArchive), c.size
		if c.dir {
			attr, size = attrDir, 0
		}
		b = append(b, entry(c.short, attr, c.first, size, v.mtime)...)
	}
	at := v.g.clusterOffset(d.first)
	if d.isRoot && v.g.fat16 {
		at = (v.g.reserved + v.g.nfats*v.g.fatSectors) * fatSector
	} else {
		b = append(b, make([]byte, d.count*v.g.clusterBytes()-int64(len(b)))...)
	}
	if err := v.writeAt(b, at); err != nil {
		return err
	}
	for _, c := range d.children {
		if c.dir {
			if err := v.writeDir(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFiles copies each file's contents into its run.
func (v *fatVolume) writeFiles(ctx context.Context, d *fatNode) error {
	buf := make([]byte, 1<<20)
	var walk func(d *fatNode) error
	walk = func(d *fatNode) error {
		for _, c := range d.children {
			if c.dir {
				if err := walk(c); err != nil {
					return err
				}
				continue
			}
			if c.size == 0 {
				continue
			}
			if err := v.copyFile(ctx, c, buf); err != nil {
				return fmt.Errorf("%s: %w", c.file.Path, err)
			}
		}
		return nil
	}
	return walk(d)
}

func (v *fatVolume) copyFile(ctx context.Context, c *fatNode, buf []byte) error {
	r, err := c.file.open()
	if err != nil {
		return err
	}
	defer r.Close()
	w := io.NewOffsetWriter(v.w, v.off+v.g.clusterOffset(c.first))
	n, err := io.CopyBuffer(w, ctxReader{ctx, io.LimitReader(r, c.size)}, buf)
	if err != nil {
		return err
	}
	if n != c.size {
		return fmt.Errorf("file changed size while being written (%d of %d bytes)", n, c.size)
	}
	return nil
}

// ctxReader fails its reads once ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
