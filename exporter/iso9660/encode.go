package iso9660

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// both writes v little-endian then big-endian ("both-byte order").
func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

// padded copies s into b, filling the rest with spaces.
func padded(b []byte, s string) {
	n := copy(b, s)
	for i := n; i < len(b); i++ {
		b[i] = ' '
	}
}

// recDate is a directory record's 7-byte date (UTC).
func recDate(b []byte, t time.Time) {
	t = t.UTC()
	if t.Year() < 1900 || t.Year() > 2155 {
		t = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	b[0] = byte(t.Year() - 1900)
	b[1], b[2] = byte(t.Month()), byte(t.Day())
	b[3], b[4], b[5] = byte(t.Hour()), byte(t.Minute()), byte(t.Second())
	b[6] = 0
}

// vdDate is a volume descriptor's 17-byte date.
func vdDate(b []byte, t time.Time) {
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		t = time.Unix(0, 0).UTC()
	}
	copy(b, fmt.Sprintf("%04d%02d%02d%02d%02d%02d00", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second()))
	b[16] = 0
}

func (img *image) pvd() []byte {
	b := make([]byte, SectorSize)
	b[0] = 1
	copy(b[1:], "CD001")
	b[6] = 1
	padded(b[8:40], "LINUX")
	padded(b[40:72], strings.ToUpper(img.o.VolumeID))
	both32(b[80:], img.total)
	both16(b[120:], 1)
	both16(b[124:], 1)
	both16(b[128:], SectorSize)
	both32(b[132:], img.ptSize)
	binary.LittleEndian.PutUint32(b[140:], img.ptL)
	binary.BigEndian.PutUint32(b[148:], img.ptM)
	root := &record{ident: []byte{0}, self: img.root}
	copy(b[156:190], img.encodeRecord(root))
	padded(b[190:318], "")
	padded(b[318:446], "")
	padded(b[446:574], "LKBUILD")
	padded(b[574:702], "LKBUILD")
	padded(b[702:739], "")
	padded(b[739:776], "")
	padded(b[776:813], "")
	vdDate(b[813:], img.o.ModTime)
	vdDate(b[830:], img.o.ModTime)
	copy(b[847:], "0000000000000000") // no expiration
	vdDate(b[864:], img.o.ModTime)
	b[881] = 1
	return b
}

func (img *image) bootRecord() []byte {
	b := make([]byte, SectorSize)
	b[0] = 0
	copy(b[1:], "CD001")
	b[6] = 1
	copy(b[7:], "EL TORITO SPECIFICATION")
	binary.LittleEndian.PutUint32(b[71:], img.catalog.lba)
	return b
}

// bootCatalog is the El Torito catalog: a validation entry, the default
// entry (the first boot image), then one section per further image.
func (img *image) bootCatalog() []byte {
	b := make([]byte, SectorSize)
	first := img.o.Boot[0]
	b[0] = 1
	b[1] = byte(first.Platform)
	copy(b[4:28], "LKBUILD")
	b[30], b[31] = 0x55, 0xaa
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	binary.LittleEndian.PutUint16(b[28:], -sum)
	img.bootEntry(b[32:64], 0)
	off := 64
	for i := 1; i < len(img.o.Boot); i++ {
		h := b[off : off+32]
		h[0] = 0x90
		if i == len(img.o.Boot)-1 {
			h[0] = 0x91 // final header
		}
		h[1] = byte(img.o.Boot[i].Platform)
		binary.LittleEndian.PutUint16(h[2:], 1)
		img.bootEntry(b[off+32:off+64], i)
		off += 64
	}
	return b
}

func (img *image) bootEntry(e []byte, i int) {
	be, n := img.o.Boot[i], img.boots[i]
	e[0] = 0x88 // bootable
	e[1] = 0    // no emulation
	count := be.LoadSectors
	if count == 0 {
		if s := (uint64(n.size) + 511) / 512; s <= 0xffff {
			count = uint16(s)
		} else {
			count = 1
		}
	}
	binary.LittleEndian.PutUint16(e[6:], count)
	binary.LittleEndian.PutUint32(e[8:], n.lba)
}

func (img *image) pathTable(bigEndian bool) []byte {
	var b []byte
	for _, d := range img.dirs {
		id := ptIdent(d)
		e := make([]byte, 8+len(id)+len(id)%2)
		e[0] = byte(len(id))
		parent := 1
		if d.parent != nil {
			parent = d.parent.dirNum
		}
		if bigEndian {
			binary.BigEndian.PutUint32(e[2:], d.lba)
			binary.BigEndian.PutUint16(e[6:], uint16(parent))
		} else {
			binary.LittleEndian.PutUint32(e[2:], d.lba)
			binary.LittleEndian.PutUint16(e[6:], uint16(parent))
		}
		copy(e[8:], id)
		b = append(b, e...)
	}
	return b
}

func (img *image) encodeRecord(r *record) []byte {
	b := make([]byte, r.length())
	b[0] = byte(len(b))
	n := r.self
	both32(b[2:], n.lba)
	both32(b[10:], n.size)
	mt := n.f.ModTime
	if mt.IsZero() {
		mt = img.o.ModTime
	}
	recDate(b[18:], mt)
	if n.isDir() {
		b[25] = 2
	}
	both16(b[28:], 1)
	b[32] = byte(len(r.ident))
	copy(b[33:], r.ident)
	su := b[r.length()-len(r.su):]
	copy(su, r.su)
	if len(r.ce) > 0 {
		a := r.ce[0]
		copy(su[len(su)-ceLen:], suspCE(a.lba, a.off, uint32(len(a.data))))
	}
	return b
}

// System Use Sharing Protocol and Rock Ridge entries.

func suspEntry(sig string, body []byte) []byte {
	e := make([]byte, 4+len(body))
	copy(e, sig)
	e[2] = byte(len(e))
	e[3] = 1
	copy(e[4:], body)
	return e
}

func suspSP() []byte { return suspEntry("SP", []byte{0xbe, 0xef, 0}) }

func suspCE(lba, off, length uint32) []byte {
	body := make([]byte, 24)
	both32(body, lba)
	both32(body[8:], off)
	both32(body[16:], length)
	return suspEntry("CE", body)
}

func suspER() []byte {
	id, des, src := "RRIP_1991A", "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS", "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE"
	body := []byte{byte(len(id)), byte(len(des)), byte(len(src)), 1}
	body = append(body, id+des+src...)
	return suspEntry("ER", body)
}

// rockRidge returns the Rock Ridge entries of n: PX, TF, then PN for
// devices, SL for symlinks and NM (the real name) for named records.
func rockRidge(n *node, named bool) ([][]byte, error) {
	f := n.f
	nlink := uint32(1)
	switch {
	case n.isDir():
		nlink = uint32(2 + n.subdirs)
	case f.NLink > 1:
		nlink = uint32(f.NLink)
	}
	px := make([]byte, 40)
	both32(px, fstree.UnixMode(f.Mode))
	both32(px[8:], nlink)
	both32(px[16:], f.UID)
	both32(px[24:], f.GID)
	both32(px[32:], n.ino)
	out := [][]byte{suspEntry("PX", px)}

	tf := make([]byte, 1+3*7)
	tf[0] = 0x0e // modify, access, attributes
	for i := 0; i < 3; i++ {
		recDate(tf[1+7*i:], f.ModTime)
	}
	out = append(out, suspEntry("TF", tf))

	if f.Mode&fs.ModeDevice != 0 {
		pn := make([]byte, 16)
		both32(pn, fstree.Major(f.Rdev))
		both32(pn[8:], fstree.Minor(f.Rdev))
		out = append(out, suspEntry("PN", pn))
	}
	if f.Mode&fs.ModeSymlink != 0 {
		sl, err := slEntries(f.Linkname)
		if err != nil {
			return nil, err
		}
		out = append(out, sl...)
	}
	if named {
		name := []byte(lastElem(f.Path))
		for len(name) > 0 {
			k := min(len(name), 250)
			flags := byte(0)
			if k < len(name) {
				flags = 1 // continues
			}
			out = append(out, suspEntry("NM", append([]byte{flags}, name[:k]...)))
			name = name[k:]
		}
	}
	return out, nil
}

func lastElem(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// maxLinkTarget is the longest symlink target: Linux creates none longer
// (PATH_MAX - 1) and reads a Rock Ridge one into a 4 KiB page.
const maxLinkTarget = 4095

// slEntries encodes a symlink target as SL entries of at most 255 bytes.
func slEntries(target string) ([][]byte, error) {
	if target == "" {
		return nil, fmt.Errorf("empty symlink target")
	}
	if len(target) > maxLinkTarget {
		return nil, fmt.Errorf("symlink target of %d bytes: at most %d (PATH_MAX - 1) can be read back", len(target), maxLinkTarget)
	}
	var comps [][]byte
	rest := target
	if strings.HasPrefix(rest, "/") {
		comps = append(comps, []byte{0x08, 0})
		rest = strings.TrimLeft(rest, "/")
	}
	for _, c := range strings.Split(rest, "/") {
		switch c {
		case "":
			continue
		case ".":
			comps = append(comps, []byte{0x02, 0})
		case "..":
			comps = append(comps, []byte{0x04, 0})
		default:
			for len(c) > 0 {
				k := min(len(c), 240)
				flags := byte(0)
				if k < len(c) {
					flags = 1
				}
				comps = append(comps, append([]byte{flags, byte(k)}, c[:k]...))
				c = c[k:]
			}
		}
	}
	var out [][]byte
	var cur []byte
	for _, c := range comps {
		if len(cur) > 0 && 5+len(cur)+len(c) > 255 {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, c...)
	}
	out = append(out, cur)
	for i, body := range out {
		flags := byte(0)
		if i < len(out)-1 {
			flags = 1
		}
		out[i] = suspEntry("SL", append([]byte{flags}, body...))
	}
	return out, nil
}
