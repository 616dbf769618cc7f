// Package uki writes a Unified Kernel Image: a systemd EFI stub with the
// kernel, initrd, command line and os-release appended as PE sections
// (.osrel, .cmdline, .linux, .initrd), the layout systemd's ukify writes.
// The result is one EFI application that firmware or systemd-boot starts
// directly. The stub is read into memory (it is small); section contents
// are streamed.
package uki

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Section is one PE section to append.
type Section struct {
	Name string    // at most 8 bytes, e.g. ".linux"
	Size int64     // length of Data
	Data io.Reader // contents, exactly Size bytes
}

const (
	peSignature     = "PE\x00\x00"
	coffHeaderSize  = 20
	sectionHdrSize  = 40
	magicPE32Plus   = 0x20b
	magicPE32       = 0x10b
	scnInitData     = 0x00000040 // IMAGE_SCN_CNT_INITIALIZED_DATA
	scnMemRead      = 0x40000000 // IMAGE_SCN_MEM_READ
	maxSectionBytes = 1<<32 - 1
)

// peLayout holds the offsets of the fields Write changes.
type peLayout struct {
	coff          int // offset of the COFF header
	opt           int // offset of the optional header
	sectionTable  int // offset of the first section header
	sections      int
	sectionAlign  uint32
	fileAlign     uint32
	sizeOfImage   int // offset of SizeOfImage
	checksum      int // offset of CheckSum
	sizeOfHeaders uint32
	endVA         uint32 // end of the last section in memory
	endFile       uint32 // end of the last section's raw data
}

func parse(stub []byte) (*peLayout, error) {
	if len(stub) < 0x40 || string(stub[:2]) != "MZ" {
		return nil, errors.New("stub is not a PE file (no MZ header)")
	}
	l := &peLayout{}
	pe := int(binary.LittleEndian.Uint32(stub[0x3c:]))
	if pe+4+coffHeaderSize > len(stub) || string(stub[pe:pe+4]) != peSignature {
		return nil, errors.New("stub is not a PE file (no PE signature)")
	}
	l.coff = pe + 4
	l.sections = int(binary.LittleEndian.Uint16(stub[l.coff+2:]))
	optSize := int(binary.LittleEndian.Uint16(stub[l.coff+16:]))
	l.opt = l.coff + coffHeaderSize
	if l.opt+optSize > len(stub) || optSize < 64 {
		return nil, errors.New("stub: truncated optional header")
	}
	switch binary.LittleEndian.Uint16(stub[l.opt:]) {
	case magicPE32Plus, magicPE32:
	default:
		return nil, errors.New("stub: unknown optional header magic")
	}
	l.sectionAlign = binary.LittleEndian.Uint32(stub[l.opt+32:])
	l.fileAlign = binary.LittleEndian.Uint32(stub[l.opt+36:])
	l.sizeOfImage = l.opt + 56
	l.sizeOfHeaders = binary.LittleEndian.Uint32(stub[l.opt+60:])
	l.checksum = l.opt + 64
	if l.sectionAlign == 0 || l.fileAlign == 0 {
		return nil, errors.New("stub: zero section or file alignment")
	}
	l.sectionTable = l.opt + optSize
	if l.sectionTable+l.sections*sectionHdrSize > len(stub) {
		return nil, errors.New("stub: truncated section table")
	}
	for i := 0; i < l.sections; i++ {
		h := stub[l.sectionTable+i*sectionHdrSize:]
		vsize, va := binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
		rsize, raw := binary.LittleEndian.Uint32(h[16:]), binary.LittleEndian.Uint32(h[20:])
		l.endVA = max(l.endVA, va+max(vsize, rsize))
		l.endFile = max(l.endFile, raw+rsize)
	}
	if int(l.endFile) > len(stub) {
		return nil, errors.New("stub: section data beyond the end of the file")
	}
	return l, nil
}

func align(v, a uint64) uint64 { return (v + a - 1) / a * a }

// Write writes stub with sections appended to w. The stub's trailing
// bytes after its last section (a signature, debug data) are dropped. The
// PE checksum is cleared: firmware does not check it and signing tools
// recompute it.
func Write(w io.Writer, stub []byte, sections []Section) error {
	l, err := parse(stub)
	if err != nil {
		return err
	}
	hdrEnd := l.sectionTable + (l.sections+len(sections))*sectionHdrSize
	if uint32(hdrEnd) > l.sizeOfHeaders {
		return fmt.Errorf("stub: no room for %d more section headers (%d header bytes, need %d)", len(sections), l.sizeOfHeaders, hdrEnd)
	}
	out := append([]byte(nil), stub[:l.endFile]...)
	binary.LittleEndian.PutUint16(out[l.coff+2:], uint16(l.sections+len(sections)))
	binary.LittleEndian.PutUint32(out[l.checksum:], 0)
	// A signature (the certificate table, data directory 4) no longer
	// covers the image: drop the reference to it.
	if dirs := l.opt + 112 + 4*8; binary.LittleEndian.Uint16(out[l.opt:]) == magicPE32Plus && dirs+8 <= l.sectionTable {
		binary.LittleEndian.PutUint64(out[dirs:], 0)
	}

	va := align(uint64(l.endVA), uint64(l.sectionAlign))
	raw := align(uint64(l.endFile), uint64(l.fileAlign))
	type placed struct {
		s        Section
		raw, pad uint64
	}
	var plan []placed
	for i, s := range sections {
		if len(s.Name) == 0 || len(s.Name) > 8 {
			return fmt.Errorf("section name %q: must be 1 to 8 bytes", s.Name)
		}
		if s.Size < 0 || s.Size > maxSectionBytes {
			return fmt.Errorf("section %s: size %d out of range", s.Name, s.Size)
		}
		rsize := align(uint64(s.Size), uint64(l.fileAlign))
		if va+uint64(s.Size) > maxSectionBytes || raw+rsize > maxSectionBytes {
			return fmt.Errorf("section %s: image larger than 4 GiB", s.Name)
		}
		h := out[l.sectionTable+(l.sections+i)*sectionHdrSize:][:sectionHdrSize]
		clear(h)
		copy(h, s.Name)
		binary.LittleEndian.PutUint32(h[8:], uint32(s.Size))
		binary.LittleEndian.PutUint32(h[12:], uint32(va))
		binary.LittleEndian.PutUint32(h[16:], uint32(rsize))
		binary.LittleEndian.PutUint32(h[20:], uint32(raw))
		binary.LittleEndian.PutUint32(h[36:], scnInitData|scnMemRead)
		plan = append(plan, placed{s: s, raw: raw, pad: rsize - uint64(s.Size)})
		va = align(va+uint64(s.Size), uint64(l.sectionAlign))
		raw += rsize
	}
	binary.LittleEndian.PutUint32(out[l.sizeOfImage:], uint32(va))

	if _, err := w.Write(out); err != nil {
		return err
	}
	pos := uint64(len(out))
	for _, p := range plan {
		if err := zeros(w, p.raw-pos); err != nil {
			return err
		}
		n, err := io.Copy(w, io.LimitReader(p.s.Data, p.s.Size))
		if err != nil {
			return fmt.Errorf("section %s: %w", p.s.Name, err)
		}
		if n != p.s.Size {
			return fmt.Errorf("section %s: short data (%d of %d bytes)", p.s.Name, n, p.s.Size)
		}
		if err := zeros(w, p.pad); err != nil {
			return err
		}
		pos = p.raw + uint64(p.s.Size) + p.pad
	}
	return nil
}

func zeros(w io.Writer, n uint64) error {
	_, err := io.CopyN(w, zeroReader{}, int64(n))
	return err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// OSRelease is the .osrel contents: the name systemd-boot shows in its menu.
func OSRelease(name string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "NAME=%q\nID=linuxkit\nPRETTY_NAME=%q\n", "LinuxKit", name)
	return b.Bytes()
}
