// Package squashfs writes a root filesystem tree as a SquashFS 4.0 image,
// zlib-compressed ("gzip", mksquashfs's default), readable by the Linux
// kernel and squashfs-tools. File data is streamed block by block; only
// the inode, directory and id tables are held in memory (compressed). The
// same tree gives the same bytes.
//
// Every file gets whole blocks (no fragment packing), blocks of zeros are
// stored sparse, hard links share one inode, files with the same contents
// share their data blocks (as mksquashfs does), and there are no extended
// attributes and no NFS export table.
package squashfs

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

const (
	magic         = 0x73717368
	blockSize     = 128 << 10
	blockLog      = 17
	metaSize      = 8192
	compZlib      = 1
	flagNoFrags   = 0x0010
	flagNoXattrs  = 0x0200
	uncompData    = 1 << 24
	uncompMeta    = 0x8000
	superSize     = 96
	noTable       = ^uint64(0)
	noFragment    = ^uint32(0)
	noXattr       = ^uint32(0)
	typeDir       = 1
	typeFile      = 2
	typeSymlink   = 3
	typeBlk       = 4
	typeChr       = 5
	typeFifo      = 6
	typeSocket    = 7
	typeLDir      = 8
	typeLFile     = 9
	maxDirEntries = 256
)

// Options control the image.
type Options struct {
	// ModTime is the superblock's time; entries keep their own.
	ModTime time.Time
	// Epoch, when set, clamps entry modification times to it.
	Epoch *time.Time
}

type node struct {
	e        fstree.Entry
	children []*node
	parent   *node
	ino      uint32 // inode number
	ref      uint64 // inode reference (metablock << 16 | offset)
	done     bool
	// regular files
	start  uint64
	blocks []uint32
	// directories
	listStart  uint32
	listOffset uint16
	listSize   uint32
}

// Write writes the SquashFS image of the tree under root to f, with the
// entries Walk returns for it.
func Write(f io.WriteSeeker, root string, entries []fstree.Entry, o Options) error {
	w := &writer{out: f, root: root, o: o, ids: map[uint32]uint16{}}
	return w.write(entries)
}

type writer struct {
	out    io.WriteSeeker
	pos    uint64
	maxPos uint64 // the furthest byte written (blocks of duplicates are taken back)
	root   string
	o      Options
	ids    map[uint32]uint16
	idList []uint32
	inodes *metaWriter
	dirs   *metaWriter
	links  map[int]*node
}

func (w *writer) write(entries []fstree.Entry) error {
	rootNode := &node{e: fstree.RootEntry(w.root, w.o.ModTime)}
	byPath, err := fstree.Tree(rootNode, entries, func(e fstree.Entry, parent *node) (*node, error) {
		n := &node{e: e, parent: parent}
		parent.children = append(parent.children, n)
		return n, nil
	})
	if err != nil {
		return err
	}
	for _, n := range byPath {
		if w.o.Epoch != nil && n.e.ModTime.After(*w.o.Epoch) {
			n.e.ModTime = *w.o.Epoch
		}
		sort.Slice(n.children, func(i, j int) bool { return name(n.children[i]) < name(n.children[j]) })
	}

	// Inode numbers in post-order (children before their directory), hard
	// links sharing the first path's number.
	var order []*node
	var post func(*node)
	post = func(n *node) {
		for _, c := range n.children {
			post(c)
		}
		order = append(order, n)
	}
	post(rootNode)
	w.links = map[int]*node{}
	next := uint32(1)
	var unique []*node
	for _, n := range order {
		if g := n.e.LinkGroup; g != 0 && n.e.Mode.IsRegular() {
			if first, ok := w.links[g]; ok {
				n.ino = first.ino
				continue
			}
			w.links[g] = n
		}
		n.ino = next
		next++
		unique = append(unique, n)
	}

	// Data blocks follow the superblock.
	if _, err := w.out.Seek(superSize, io.SeekStart); err != nil {
		return err
	}
	w.pos = superSize
	var files []*node
	for _, n := range unique {
		if n.e.Mode.IsRegular() {
			files = append(files, n)
		}
	}
	if err := w.writeAllData(files); err != nil {
		return err
	}

	// Inodes and directory listings, post-order: a directory's listing
	// needs its children's inode references.
	w.inodes, w.dirs = newMetaWriter(), newMetaWriter()
	for _, n := range order {
		if n.done || (n.e.LinkGroup != 0 && n.e.Mode.IsRegular() && w.links[n.e.LinkGroup] != n) {
			continue
		}
		if n.e.Mode.IsDir() {
			if err := w.writeListing(n); err != nil {
				return fmt.Errorf("%s: %w", n.e.Path, err)
			}
		}
		if err := w.writeInode(n, rootNode, next); err != nil {
			return fmt.Errorf("%s: %w", n.e.Path, err)
		}
		n.done = true
	}

	inodeStart := w.pos
	if err := w.emit(w.inodes.finish()); err != nil {
		return err
	}
	dirStart := w.pos
	if err := w.emit(w.dirs.finish()); err != nil {
		return err
	}
	idStart, err := w.writeIDs()
	if err != nil {
		return err
	}
	used := w.pos
	if pad := (4096 - used%4096) % 4096; pad > 0 {
		if err := w.emit(make([]byte, pad)); err != nil {
			return err
		}
	}
	// Blocks taken back for duplicate files may have been written past the
	// end: cut them off.
	if t, ok := w.out.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(int64(w.pos)); err != nil {
			return err
		}
	} else if w.maxPos > w.pos {
		return fmt.Errorf("internal error: %d stale bytes after the image and no way to truncate the output", w.maxPos-w.pos)
	}

	sb := make([]byte, superSize)
	le := binary.LittleEndian
	le.PutUint32(sb[0:], magic)
	le.PutUint32(sb[4:], next-1)
	le.PutUint32(sb[8:], unixTime(w.o.ModTime))
	le.PutUint32(sb[12:], blockSize)
	le.PutUint32(sb[16:], 0)
	le.PutUint16(sb[20:], compZlib)
	le.PutUint16(sb[22:], blockLog)
	le.PutUint16(sb[24:], flagNoFrags|flagNoXattrs)
	le.PutUint16(sb[26:], uint16(len(w.idList)))
	le.PutUint16(sb[28:], 4)
	le.PutUint16(sb[30:], 0)
	le.PutUint64(sb[32:], rootNode.ref)
	le.PutUint64(sb[40:], used)
	le.PutUint64(sb[48:], idStart)
	le.PutUint64(sb[56:], noTable) // xattrs
	le.PutUint64(sb[64:], inodeStart)
	le.PutUint64(sb[72:], dirStart)
	le.PutUint64(sb[80:], noTable) // fragments
	le.PutUint64(sb[88:], noTable) // export
	if _, err := w.out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = w.out.Write(sb)
	return err
}

func name(n *node) string { return path.Base(n.e.Path) }

func unixTime(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(s)
}

func (w *writer) emit(b []byte) error {
	n, err := w.out.Write(b)
	w.pos += uint64(n)
	w.maxPos = max(w.maxPos, w.pos)
	return err
}

// block is one data block on its way from the reader, through a
// compressor, to the output.
type block struct {
	n     *node
	first bool   // n's first block (or n is empty): n.start is set here
	last  bool   // n's last block
	data  []byte // read from the file (nil for an empty file)
	out   []byte // what is written: compressed or stored data, nil if sparse
	size  uint32 // the block size entry
	done  chan struct{}
	err   error
}

// writeAllData writes the data blocks of files, in order, compressing up
// to GOMAXPROCS blocks at once. The bytes are the same as compressing one
// block at a time; memory is bounded by the blocks in flight.
func (w *writer) writeAllData(files []*node) error {
	workers := runtime.GOMAXPROCS(0)
	inFlight := 4 * workers
	pool := sync.Pool{New: func() any { b := make([]byte, blockSize); return &b }}
	work := make(chan *block, inFlight)
	order := make(chan *block, inFlight)
	stop := make(chan struct{})
	defer close(stop)

	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var z bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
			for b := range work {
				compressBlock(b, zw, &z)
				close(b.done)
			}
		}()
	}
	go func() { // the reader: files in order, block by block
		defer close(order)
		defer close(work)
		send := func(b *block) bool {
			select {
			case order <- b:
			case <-stop:
				return false
			}
			if b.data == nil || b.err != nil {
				close(b.done)
				return true
			}
			select {
			case work <- b:
				return true
			case <-stop:
				return false
			}
		}
		for _, n := range files {
			if !readFile(w.root, n, &pool, send) {
				return
			}
		}
	}()
	defer wg.Wait()

	// Files with the same contents share their blocks, as mksquashfs does:
	// a file's contents are hashed as its blocks go out, and when they
	// match an earlier file's, its blocks are taken back (the output is
	// rewound) and the earlier ones used.
	type contents struct {
		size int64
		sum  [sha256.Size]byte
	}
	seen := map[contents]*node{}
	h := sha256.New()
	for b := range order {
		<-b.done
		if b.err != nil {
			return fmt.Errorf("%s: %w", b.n.e.Path, b.err)
		}
		n := b.n
		if b.first {
			n.start = w.pos
			h.Reset()
		}
		if b.data == nil {
			continue
		}
		h.Write(b.data)
		n.blocks = append(n.blocks, b.size)
		if b.out != nil {
			if err := w.emit(b.out); err != nil {
				return err
			}
		}
		pool.Put(&b.data)
		if !b.last {
			continue
		}
		var c contents
		c.size = n.e.Size
		h.Sum(c.sum[:0])
		prev, dup := seen[c]
		if !dup {
			seen[c] = n
			continue
		}
		if _, err := w.out.Seek(int64(n.start), io.SeekStart); err != nil {
			return err
		}
		w.pos, n.start, n.blocks = n.start, prev.start, prev.blocks
	}
	return nil
}

// readFile sends n's blocks (or one empty marker for an empty file) in
// order; it returns false when the writer stopped.
func readFile(root string, n *node, pool *sync.Pool, send func(*block) bool) bool {
	if n.e.Size == 0 {
		return send(&block{n: n, first: true, done: make(chan struct{})})
	}
	f, err := fstree.OpenRegular(filepath.Join(root, n.e.Path))
	if err != nil {
		return send(&block{n: n, err: err, done: make(chan struct{})}) && false
	}
	defer f.Close()
	remaining := n.e.Size
	for first := true; remaining > 0; first = false {
		k := min(remaining, blockSize)
		buf := *pool.Get().(*[]byte)
		b := &block{n: n, first: first, data: buf[:k], done: make(chan struct{})}
		if _, err := io.ReadFull(f, b.data); err != nil {
			b.data, b.err = nil, fmt.Errorf("read: %w (file changed while writing?)", err)
			return send(b) && false
		}
		remaining -= k
		b.last = remaining == 0
		if remaining == 0 {
			var one [1]byte
			if extra, _ := f.Read(one[:]); extra > 0 {
				b.data, b.err = nil, fmt.Errorf("file grew while writing")
				return send(b) && false
			}
		}
		if !send(b) {
			return false
		}
	}
	return true
}

// compressBlock fills b.out and b.size: sparse when all zero, compressed
// when that is smaller, else stored.
func compressBlock(b *block, zw *zlib.Writer, z *bytes.Buffer) {
	if allZero(b.data) {
		return
	}
	z.Reset()
	zw.Reset(z)
	zw.Write(b.data)
	zw.Close()
	if z.Len() < len(b.data) {
		b.out, b.size = append([]byte(nil), z.Bytes()...), uint32(z.Len())
		return
	}
	b.out, b.size = b.data, uint32(len(b.data))|uncompData
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (w *writer) id(v uint32) uint16 {
	if i, ok := w.ids[v]; ok {
		return i
	}
	i := uint16(len(w.idList))
	w.ids[v] = i
	w.idList = append(w.idList, v)
	return i
}

// inodeTypes maps st_mode file types to basic inode types.
var inodeTypes = map[uint32]uint16{
	fstree.TypeDir: typeDir, fstree.TypeLink: typeSymlink, fstree.TypeChar: typeChr, fstree.TypeBlock: typeBlk,
	fstree.TypeFifo: typeFifo, fstree.TypeSocket: typeSocket, fstree.TypeFile: typeFile,
}

// inodeType is the basic inode type of a file mode.
func inodeType(m fs.FileMode) uint16 { return inodeTypes[fstree.UnixMode(m)&fstree.TypeMask] }

// writeInode appends n's inode to the inode table and records its ref.
func (w *writer) writeInode(n *node, root *node, count uint32) error {
	if len(w.idList) > 65535 {
		return fmt.Errorf("more than 65535 distinct owners")
	}
	t := inodeType(n.e.Mode)
	var b []byte
	le := binary.LittleEndian
	u32 := func(v uint32) { b = le.AppendUint32(b, v) }
	u16 := func(v uint16) { b = le.AppendUint16(b, v) }
	u64 := func(v uint64) { b = le.AppendUint64(b, v) }
	header := func(t uint16) {
		u16(t)
		u16(uint16(fstree.PermBits(n.e.Mode)))
		u16(w.id(n.e.UID))
		u16(w.id(n.e.GID))
		u32(unixTime(n.e.ModTime))
		u32(n.ino)
	}
	nlink := uint32(max(n.e.NLink, 1))
	switch t {
	case typeDir:
		parent := count // the root's parent: one past the last inode
		if n.parent != nil {
			parent = n.parent.ino
		}
		subdirs := uint32(0)
		for _, c := range n.children {
			if c.e.Mode.IsDir() {
				subdirs++
			}
		}
		size := n.listSize + 3
		if size <= 0xffff {
			header(typeDir)
			u32(n.listStart)
			u32(2 + subdirs)
			u16(uint16(size))
			u16(n.listOffset)
			u32(parent)
		} else {
			header(typeLDir)
			u32(2 + subdirs)
			u32(size)
			u32(n.listStart)
			u32(parent)
			u16(0) // no index
			u16(n.listOffset)
			u32(noXattr)
		}
	case typeFile:
		if n.start > 1<<32-1 || n.e.Size > 1<<32-1 || nlink > 1 {
			header(typeLFile)
			u64(n.start)
			u64(uint64(n.e.Size))
			u64(0) // sparse bytes: not tracked
			u32(nlink)
			u32(noFragment)
			u32(0)
			u32(noXattr)
		} else {
			header(typeFile)
			u32(uint32(n.start))
			u32(noFragment)
			u32(0)
			u32(uint32(n.e.Size))
		}
		for _, s := range n.blocks {
			u32(s)
		}
	case typeSymlink:
		header(typeSymlink)
		u32(nlink)
		u32(uint32(len(n.e.Linkname)))
		b = append(b, n.e.Linkname...)
	case typeBlk, typeChr:
		header(t)
		u32(nlink)
		maj, mnr := fstree.Major(n.e.Rdev), fstree.Minor(n.e.Rdev)
		u32(mnr&0xff | maj<<8 | (mnr&^0xff)<<12) // Linux's new_encode_dev
	case typeFifo, typeSocket:
		header(t)
		u32(nlink)
	}
	n.ref = w.inodes.ref()
	w.inodes.write(b)
	return nil
}

// refOf is n's inode reference: for a hard link, its group's inode.
func (w *writer) refOf(n *node) uint64 {
	if g := n.e.LinkGroup; g != 0 && n.e.Mode.IsRegular() {
		return w.links[g].ref
	}
	return n.ref
}

// writeListing appends the directory listing of d to the directory table.
func (w *writer) writeListing(d *node) error {
	start, off := w.dirs.pos()
	d.listStart, d.listOffset = uint32(start), off
	var b []byte
	le := binary.LittleEndian
	kids := d.children
	for i := 0; i < len(kids); {
		// One header per run of entries whose inodes share a metablock and
		// whose numbers are within a signed 16-bit offset of the first.
		base := kids[i]
		block := uint32(w.refOf(base) >> 16)
		j := i
		for j < len(kids) && j-i < maxDirEntries && uint32(w.refOf(kids[j])>>16) == block &&
			int64(kids[j].ino)-int64(base.ino) >= -32768 && int64(kids[j].ino)-int64(base.ino) <= 32767 {
			j++
		}
		b = le.AppendUint32(b, uint32(j-i-1))
		b = le.AppendUint32(b, block)
		b = le.AppendUint32(b, base.ino)
		for _, c := range kids[i:j] {
			nm := name(c)
			if len(nm) == 0 || len(nm) > 256 {
				return fmt.Errorf("name %q: squashfs names are 1 to 256 bytes", nm)
			}
			b = le.AppendUint16(b, uint16(w.refOf(c)&0xffff))
			b = le.AppendUint16(b, uint16(int16(int64(c.ino)-int64(base.ino))))
			b = le.AppendUint16(b, inodeType(c.e.Mode))
			b = le.AppendUint16(b, uint16(len(nm)-1))
			b = append(b, nm...)
		}
		i = j
	}
	d.listSize = uint32(len(b))
	w.dirs.write(b)
	return nil
}

// writeIDs writes the id table (metablocks of uint32 ids, then their
// positions) and returns where the position list starts.
func (w *writer) writeIDs() (uint64, error) {
	var raw []byte
	for _, id := range w.idList {
		raw = binary.LittleEndian.AppendUint32(raw, id)
	}
	var ptrs []byte
	for i := 0; i < len(raw); i += metaSize {
		ptrs = binary.LittleEndian.AppendUint64(ptrs, w.pos)
		if err := w.emit(metaBlock(raw[i:min(i+metaSize, len(raw))])); err != nil {
			return 0, err
		}
	}
	start := w.pos
	return start, w.emit(ptrs)
}

// metaWriter packs a table into 8 KiB metadata blocks, compressed when
// that helps.
type metaWriter struct {
	out bytes.Buffer // finished blocks
	cur []byte       // uncompressed data of the block being filled
}

func newMetaWriter() *metaWriter { return &metaWriter{} }

// pos is where the next byte goes: the offset of its metablock in the
// table and the offset inside that block's uncompressed data.
func (m *metaWriter) pos() (uint64, uint16) { return uint64(m.out.Len()), uint16(len(m.cur)) }

func (m *metaWriter) ref() uint64 {
	block, off := m.pos()
	return block<<16 | uint64(off)
}

func (m *metaWriter) write(b []byte) {
	for len(b) > 0 {
		k := min(len(b), metaSize-len(m.cur))
		m.cur = append(m.cur, b[:k]...)
		b = b[k:]
		if len(m.cur) == metaSize {
			m.out.Write(metaBlock(m.cur))
			m.cur = m.cur[:0]
		}
	}
}

func (m *metaWriter) finish() []byte {
	if len(m.cur) > 0 {
		m.out.Write(metaBlock(m.cur))
		m.cur = nil
	}
	return m.out.Bytes()
}

func metaBlock(data []byte) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	zw.Write(data)
	zw.Close()
	out := make([]byte, 2, 2+len(data))
	if z.Len() < len(data) {
		binary.LittleEndian.PutUint16(out, uint16(z.Len()))
		return append(out, z.Bytes()...)
	}
	binary.LittleEndian.PutUint16(out, uint16(len(data))|uncompMeta)
	return append(out, data...)
}
