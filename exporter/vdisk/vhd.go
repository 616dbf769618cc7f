package vdisk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// VHDOptions are the identity and sizing choices of a VHD. The zero value is
// valid and reproducible.
type VHDOptions struct {
	// Seed derives the disk's unique ID (a UUID in the footer), which
	// Hyper-V and Azure use to tell disks apart. Pass something that
	// identifies the content, such as a digest of the build inputs; images
	// written with the same seed get the same ID.
	Seed []byte
	// Time is the creation time stored in the footer, typically
	// SOURCE_DATE_EPOCH. Times before 2000-01-01 UTC (including the zero
	// value) are stored as 2000-01-01, the format's epoch.
	Time time.Time
	// AlignMiB also rounds the virtual size up to a whole MiB, which Azure
	// requires of uploaded VHDs, choosing the smallest size that is both a
	// MiB multiple and an exact CHS geometry (up to 255 MiB more).
	AlignMiB bool
}

const (
	vhdBlockSize  = 2 << 20
	vhdBitmapSize = 512 // one bit per sector of a block, padded to a sector
	vhdBATOffset  = 1536
	vhdFixed      = 2
	vhdDynamic    = 3
	// vhdMaxSectors is the largest VHD (2040 GiB) qemu and the format's
	// 32-bit sector offsets reliably handle.
	vhdMaxSectors = 0xff000000
	// The largest disk the CHS fields can describe, 65535*16*255 sectors.
	vhdMaxCHSSectors = 65535 * 16 * 255
)

// vhdEpoch is the origin of VHD timestamps.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// VHDSize returns the virtual size, in bytes, of a VHD made from a raw image
// of size bytes: size rounded up to the smallest whole number of sectors that
// a CHS geometry (cylinders*heads*sectors per track, computed as in the VHD
// specification) describes exactly, so readers that size the disk by the
// geometry (Virtual PC, older qemu) and readers that use the footer's size
// (Hyper-V, Azure) agree. Above 65535*16*255 sectors (about 127 GiB) the
// geometry is pinned at its maximum and only the footer size counts; the size
// is then only rounded to a sector. With alignMiB the size is also a multiple
// of 1 MiB. The raw data is followed by zeros up to the returned size.
func VHDSize(size int64, alignMiB bool) int64 {
	s, _, _, _ := vhdGeometry(size, alignMiB)
	return s * sectorSize
}

// vhdGeometry returns the virtual size in sectors and its CHS geometry.
func vhdGeometry(size int64, alignMiB bool) (sectors int64, cyl uint16, heads, spt uint8) {
	step := int64(1)
	if alignMiB {
		step = (1 << 20) / sectorSize
	}
	t := roundUp(divUp(size, sectorSize), step)
	for ; t <= vhdMaxCHSSectors; t += step {
		c, h, s := chsOf(t)
		if int64(c)*int64(h)*int64(s) == t {
			return t, c, h, s
		}
	}
	c, h, s := chsOf(vhdMaxCHSSectors)
	return t, c, h, s
}

// chsOf is the VHD specification's geometry for a disk of t sectors; its
// product may be less than t.
func chsOf(t int64) (uint16, uint8, uint8) {
	t = min(t, vhdMaxCHSSectors)
	var spt, heads, cth int64
	if t >= 65535*16*63 {
		spt, heads = 255, 16
		cth = t / spt
	} else {
		spt = 17
		cth = t / spt
		heads = max((cth+1023)/1024, 4)
		if cth >= heads*1024 || heads > 16 {
			spt, heads = 31, 16
			cth = t / spt
		}
		if cth >= heads*1024 {
			spt, heads = 63, 16
			cth = t / spt
		}
	}
	return uint16(cth / heads), uint8(heads), uint8(spt)
}

// vhdFooter is the 512-byte footer (and, in dynamic disks, its copy at the
// start of the file).
type vhdFooter struct {
	dataOffset uint64
	timestamp  uint32
	size       uint64
	cyl        uint16
	heads, spt uint8
	diskType   uint32
	id         [16]byte
}

func (f *vhdFooter) marshal() []byte {
	b := make([]byte, 512)
	be := binary.BigEndian
	copy(b[0:], "conectix")
	be.PutUint32(b[8:], 2) // features: the reserved bit that must be set
	be.PutUint32(b[12:], 0x00010000)
	be.PutUint64(b[16:], f.dataOffset)
	be.PutUint32(b[24:], f.timestamp)
	copy(b[28:], "lkbd")             // creator application
	be.PutUint32(b[32:], 0x00010000) // creator version
	copy(b[36:], "Wi2k")             // creator host OS
	be.PutUint64(b[40:], f.size)     // original size
	be.PutUint64(b[48:], f.size)     // current size
	be.PutUint16(b[56:], f.cyl)
	b[58] = f.heads
	b[59] = f.spt
	be.PutUint32(b[60:], f.diskType)
	copy(b[68:], f.id[:])
	be.PutUint32(b[64:], vhdChecksum(b))
	return b
}

// vhdChecksum is the one's complement of the byte sum, the checksum field
// (bytes 64..67 of the footer, 36..39 of the dynamic header) being zero.
func vhdChecksum(b []byte) uint32 {
	var sum uint32
	for _, c := range b {
		sum += uint32(c)
	}
	return ^sum
}

// newVHDFooter checks the size and fills in the footer fields common to
// fixed and dynamic disks.
func newVHDFooter(size int64, opt VHDOptions, diskType uint32) (*vhdFooter, error) {
	if err := checkSize(size); err != nil {
		return nil, err
	}
	sectors, c, h, s := vhdGeometry(size, opt.AlignMiB)
	if sectors >= vhdMaxSectors {
		return nil, fmt.Errorf("raw image size %d exceeds the VHD limit of %d bytes", size, int64(vhdMaxSectors-1)*sectorSize)
	}
	var ts uint32
	if opt.Time.After(vhdEpoch) {
		secs := opt.Time.Unix() - vhdEpoch.Unix()
		if secs > 1<<32-1 {
			return nil, fmt.Errorf("time %s is beyond the VHD timestamp range", opt.Time)
		}
		ts = uint32(secs)
	}
	return &vhdFooter{
		timestamp: ts,
		size:      uint64(sectors * sectorSize),
		cyl:       c,
		heads:     h,
		spt:       s,
		diskType:  diskType,
		id:        deriveID(opt.Seed, "vhd unique id"),
	}, nil
}

// WriteVHD writes the raw image of size bytes as a fixed VHD: the data,
// zero-padded to VHDSize(size, opt.AlignMiB), followed by a 512-byte footer.
// raw is read once, sequentially.
func WriteVHD(w io.Writer, raw io.ReaderAt, size int64, opt VHDOptions) error {
	f, err := newVHDFooter(size, opt, vhdFixed)
	if err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	f.dataOffset = ^uint64(0)
	o := newOutput(w)
	buf := make([]byte, min(1<<20, roundUp(size, sectorSize)))
	for off := int64(0); off < size && o.err == nil; off += int64(len(buf)) {
		if err := readChunk(raw, size, buf, off); err != nil {
			return fmt.Errorf("vhd: %w", err)
		}
		o.write(buf[:min(int64(len(buf)), int64(f.size)-off)])
	}
	o.zeroFill(int64(f.size) - o.off)
	o.write(f.marshal())
	if err := o.flush(); err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	return nil
}

// WriteDynamicVHD writes the raw image of size bytes as a dynamic VHD of
// VHDSize(size, opt.AlignMiB) bytes: a copy of the footer, the dynamic disk
// header, the block allocation table, the allocated 2 MiB blocks (each a
// sector bitmap then the data) and the footer. Blocks that are entirely zero
// are left unallocated. raw is read twice: once to find the non-zero blocks
// (the table must precede the data), then to copy them; it must not change in
// between.
func WriteDynamicVHD(w io.Writer, raw io.ReaderAt, size int64, opt VHDOptions) error {
	f, err := newVHDFooter(size, opt, vhdDynamic)
	if err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	f.dataOffset = 512
	virt := int64(f.size)
	blocks := divUp(virt, vhdBlockSize)
	alloc, _, err := scanNonZero(raw, size, vhdBlockSize)
	if err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	batBytes := roundUp(blocks*4, sectorSize)
	dataStart := vhdBATOffset + batBytes

	o := newOutput(w)
	footer := f.marshal()
	o.write(footer)

	// Dynamic disk header.
	be := binary.BigEndian
	h := make([]byte, 1024)
	copy(h[0:], "cxsparse")
	be.PutUint64(h[8:], ^uint64(0)) // data offset: unused
	be.PutUint64(h[16:], vhdBATOffset)
	be.PutUint32(h[24:], 0x00010000)
	be.PutUint32(h[28:], uint32(blocks))
	be.PutUint32(h[32:], vhdBlockSize)
	be.PutUint32(h[36:], vhdChecksum(h))
	o.write(h)

	// Block allocation table: sector offsets of the allocated blocks'
	// bitmaps, in guest order; 0xFFFFFFFF for unallocated blocks and the
	// padding.
	o.at(vhdBATOffset, "vhd BAT")
	bat := make([]byte, batBytes)
	next := dataStart / sectorSize
	for b := int64(0); b < int64(len(bat))/4; b++ {
		if b < blocks && alloc.has(b) {
			be.PutUint32(bat[b*4:], uint32(next))
			next += (vhdBitmapSize + vhdBlockSize) / sectorSize
		} else {
			be.PutUint32(bat[b*4:], 0xFFFFFFFF)
		}
	}
	o.write(bat)

	// Blocks. The bitmap marks every sector as present (as qemu does), the
	// data being stored in full.
	o.at(dataStart, "vhd blocks")
	bitmap := bytes.Repeat([]byte{0xff}, vhdBitmapSize)
	buf := make([]byte, vhdBlockSize)
	for b := int64(0); b < blocks && o.err == nil; b++ {
		if !alloc.has(b) {
			continue
		}
		o.write(bitmap)
		if err := readChunk(raw, size, buf, b*vhdBlockSize); err != nil {
			return fmt.Errorf("vhd: %w", err)
		}
		o.write(buf)
	}
	o.at(next*sectorSize, "vhd footer")
	o.write(footer)
	if err := o.flush(); err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	return nil
}
