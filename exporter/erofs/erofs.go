// Package erofs writes a root filesystem tree as an uncompressed EROFS
// image (the layout mkfs.erofs writes without -z), readable by the Linux
// kernel and erofs-utils. Every inode is an extended (64-byte) inode, so
// owners above 65535 and per-file modification times are kept; small
// files, symlinks and directories are stored inline after their inode,
// larger ones in whole 4 KiB blocks. File data is streamed; the layout is
// computed from metadata first. The same tree gives the same bytes.
package erofs

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

const (
	blockSize   = 4096
	blockBits   = 12
	magic       = 0xE0F5E1E2
	sbOffset    = 1024
	inodeSize   = 64
	slotSize    = 32
	inlineMax   = 1024 // data up to this size goes right after its inode
	direntSize  = 12
	layoutPlain = 0
	layoutInl   = 2
	ftReg       = 1
	ftDir       = 2
	ftChr       = 3
	ftBlk       = 4
	ftFifo      = 5
	ftSock      = 6
	ftSymlink   = 7
)

// Options control the image.
type Options struct {
	// ModTime is the image's build time.
	ModTime time.Time
	// Epoch, when set, clamps entry modification times to it.
	Epoch *time.Time
	// UUID identifies the filesystem (zero: none).
	UUID [16]byte
}

type node struct {
	e        fstree.Entry
	parent   *node
	children []*node
	ino      uint32
	nid      uint64
	size     uint64 // i_size
	inline   bool
	blkaddr  uint32
	dirData  []byte // directory contents, built once nids are known
	first    *node  // for hard links: the node holding the inode
	src      string // host path of a regular file
	linkData []byte // symlink target
}

// Write writes the EROFS image of the tree under root (entries from
// fstree.Walk) to w.
func Write(w io.Writer, root string, entries []fstree.Entry, o Options) error {
	rootNode := &node{e: fstree.RootEntry(root, o.ModTime)}
	all := []*node{rootNode}
	groups := map[int]*node{}
	_, err := fstree.Tree(rootNode, entries, func(e fstree.Entry, parent *node) (*node, error) {
		n := &node{e: e, parent: parent}
		if len(path.Base(e.Path)) > 255 {
			return nil, fmt.Errorf("%s: name longer than 255 bytes", e.Path)
		}
		parent.children = append(parent.children, n)
		if g := e.LinkGroup; g != 0 && e.Mode.IsRegular() {
			if f, ok := groups[g]; ok {
				n.first = f
				return n, nil
			}
			groups[g] = n
		}
		all = append(all, n)
		return n, nil
	})
	if err != nil {
		return err
	}
	for _, n := range all {
		if o.Epoch != nil && n.e.ModTime.After(*o.Epoch) {
			n.e.ModTime = *o.Epoch
		}
	}

	// Sizes and storage: directories' sizes depend only on names.
	for i, n := range all {
		n.ino = uint32(i + 1)
		switch {
		case n.e.Mode.IsDir():
			n.size = uint64(dirSize(n))
		case n.e.Mode.IsRegular():
			n.size = uint64(n.e.Size)
			n.src = filepath.Join(root, n.e.Path)
		case n.e.Mode&fs.ModeSymlink != 0:
			n.linkData = []byte(n.e.Linkname)
			n.size = uint64(len(n.linkData))
		}
		n.inline = n.size > 0 && n.size <= inlineMax
	}

	// Metadata area from byte 1152 (after the superblock): inodes, each
	// with its inline data, 32-byte aligned, inline data never crossing a
	// block boundary.
	off := uint64(sbOffset + 128)
	for _, n := range all {
		need := uint64(inodeSize)
		if n.inline {
			need += n.size
		}
		if n.inline && off%blockSize+need > blockSize {
			off = (off + blockSize - 1) / blockSize * blockSize
		}
		n.nid = off / slotSize
		off = (off + need + slotSize - 1) / slotSize * slotSize
	}
	if rootNode.nid > 0xffff {
		return fmt.Errorf("internal error: root inode beyond the 16-bit nid range")
	}
	metaEnd := (off + blockSize - 1) / blockSize * blockSize
	blk := uint32(metaEnd / blockSize)
	for _, n := range all {
		if !n.inline && n.size > 0 {
			n.blkaddr = blk
			blk += uint32((n.size + blockSize - 1) / blockSize)
		}
	}
	totalBlocks := blk
	for _, n := range all {
		if n.e.Mode.IsDir() {
			n.dirData = dirContents(n)
			if uint64(len(n.dirData)) != n.size {
				return fmt.Errorf("internal error: directory %s is %d bytes, laid out %d", n.e.Path, len(n.dirData), n.size)
			}
		}
	}

	cw := &fstree.CountingWriter{W: w}
	buf := make([]byte, 256<<10)
	// Block 0: zeros, then the superblock at 1024.
	if err := cw.Zeros(sbOffset); err != nil {
		return err
	}
	if _, err := cw.Write(superblock(rootNode.nid, uint64(len(all)), totalBlocks, o)); err != nil {
		return err
	}
	for _, n := range all {
		if err := cw.Zeros(int64(n.nid*slotSize - uint64(cw.N))); err != nil {
			return err
		}
		if _, err := cw.Write(inode(n)); err != nil {
			return err
		}
		if n.inline {
			if err := writeData(cw, n, buf); err != nil {
				return fmt.Errorf("%s: %w", n.e.Path, err)
			}
		}
	}
	if err := cw.Zeros(int64(metaEnd - uint64(cw.N))); err != nil {
		return err
	}
	for _, n := range all {
		if n.inline || n.size == 0 {
			continue
		}
		if uint64(cw.N) != uint64(n.blkaddr)*blockSize {
			return fmt.Errorf("internal error: %s at byte %d, laid out at block %d", n.e.Path, cw.N, n.blkaddr)
		}
		if err := writeData(cw, n, buf); err != nil {
			return fmt.Errorf("%s: %w", n.e.Path, err)
		}
		if err := cw.Zeros(int64((blockSize - n.size%blockSize) % blockSize)); err != nil {
			return err
		}
	}
	return nil
}

func writeData(w *fstree.CountingWriter, n *node, buf []byte) error {
	switch {
	case n.e.Mode.IsDir():
		_, err := w.Write(n.dirData)
		return err
	case n.linkData != nil:
		_, err := w.Write(n.linkData)
		return err
	case n.e.Mode.IsRegular():
		return fstree.CopyContents(w, n.src, n.e.Size, buf)
	}
	return nil
}

func superblock(rootNid, inodes uint64, blocks uint32, o Options) []byte {
	b := make([]byte, 128)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[8:], 0) // no compat features: no superblock checksum
	b[12] = blockBits
	le.PutUint16(b[14:], uint16(rootNid))
	le.PutUint64(b[16:], inodes)
	t := o.ModTime.Unix()
	if t < 0 {
		t = 0
	}
	le.PutUint64(b[24:], uint64(t))
	le.PutUint32(b[36:], blocks)
	le.PutUint32(b[40:], 0) // meta_blkaddr
	le.PutUint32(b[44:], 0) // xattr_blkaddr
	copy(b[48:64], o.UUID[:])
	copy(b[64:80], "linuxkit")
	return b
}

func fileType(m fs.FileMode) byte {
	switch fstree.UnixMode(m) & fstree.TypeMask {
	case fstree.TypeDir:
		return ftDir
	case fstree.TypeLink:
		return ftSymlink
	case fstree.TypeChar:
		return ftChr
	case fstree.TypeBlock:
		return ftBlk
	case fstree.TypeFifo:
		return ftFifo
	case fstree.TypeSocket:
		return ftSock
	}
	return ftReg
}

func inode(n *node) []byte {
	b := make([]byte, inodeSize)
	le := binary.LittleEndian
	layout := uint16(layoutPlain)
	if n.inline {
		layout = layoutInl
	}
	le.PutUint16(b[0:], 1|layout<<1) // extended inode
	le.PutUint16(b[4:], uint16(fstree.UnixMode(n.e.Mode)))
	le.PutUint64(b[8:], n.size)
	switch {
	case n.e.Mode&fs.ModeDevice != 0:
		maj, mnr := fstree.Major(n.e.Rdev), fstree.Minor(n.e.Rdev)
		le.PutUint32(b[16:], mnr&0xff|maj<<8|(mnr&^0xff)<<12) // new_encode_dev
	case !n.inline:
		le.PutUint32(b[16:], n.blkaddr)
	}
	le.PutUint32(b[20:], n.ino)
	le.PutUint32(b[24:], n.e.UID)
	le.PutUint32(b[28:], n.e.GID)
	t := n.e.ModTime
	sec := t.Unix()
	if sec < 0 {
		sec = 0
	}
	le.PutUint64(b[32:], uint64(sec))
	le.PutUint32(b[40:], uint32(t.Nanosecond()))
	nlink := uint32(max(n.e.NLink, 1))
	if n.e.Mode.IsDir() {
		nlink = 2
		for _, c := range n.children {
			if c.e.Mode.IsDir() {
				nlink++
			}
		}
	}
	le.PutUint32(b[44:], nlink)
	return b
}

type dirent struct {
	name string
	nid  uint64
	ft   byte
}

func entriesOf(d *node) []dirent {
	parent := d.parent
	if parent == nil {
		parent = d
	}
	ents := []dirent{{".", d.nid, ftDir}, {"..", parent.nid, ftDir}}
	for _, c := range d.children {
		target := c
		if c.first != nil {
			target = c.first
		}
		ents = append(ents, dirent{path.Base(c.e.Path), target.nid, fileType(c.e.Mode)})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	return ents
}

// dirBlocks splits a directory's entries into blocks: each block is the
// dirent array then the names, filling at most one block.
func dirBlocks(ents []dirent) [][]dirent {
	var blocks [][]dirent
	var cur []dirent
	used := 0
	for _, e := range ents {
		if used+direntSize+len(e.name) > blockSize {
			blocks = append(blocks, cur)
			cur, used = nil, 0
		}
		cur = append(cur, e)
		used += direntSize + len(e.name)
	}
	return append(blocks, cur)
}

// dirSize is the directory's i_size: whole blocks, then the last block's
// used bytes. (nids do not change sizes.)
func dirSize(d *node) int {
	blocks := dirBlocks(entriesOf(d))
	size := (len(blocks) - 1) * blockSize
	for _, e := range blocks[len(blocks)-1] {
		size += direntSize + len(e.name)
	}
	return size
}

func dirContents(d *node) []byte {
	blocks := dirBlocks(entriesOf(d))
	var out []byte
	for i, blk := range blocks {
		b := make([]byte, 0, blockSize)
		nameOff := len(blk) * direntSize
		for _, e := range blk {
			b = binary.LittleEndian.AppendUint64(b, e.nid)
			b = binary.LittleEndian.AppendUint16(b, uint16(nameOff))
			b = append(b, e.ft, 0)
			nameOff += len(e.name)
		}
		for _, e := range blk {
			b = append(b, e.name...)
		}
		if i < len(blocks)-1 {
			b = append(b, make([]byte, blockSize-len(b))...)
		}
		out = append(out, b...)
	}
	return out
}
