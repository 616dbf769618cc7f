package vdisk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// parseVMDK reads a streamOptimized VMDK as written by WriteVMDK: it walks
// the stream marker by marker, as an importer reading it sequentially would,
// then checks that the grain directory named by the footer maps every grain
// written and nothing else.
func parseVMDK(b []byte) (*vimage, error) {
	le := binary.LittleEndian
	if len(b) < 3*512 || len(b)%512 != 0 {
		return nil, fmt.Errorf("file size %d", len(b))
	}
	hdr := b[:512]
	check := func(h []byte) error {
		switch {
		case le.Uint32(h[0:]) != 0x564d444b:
			return fmt.Errorf("bad magic")
		case le.Uint32(h[4:]) != 3:
			return fmt.Errorf("version %d", le.Uint32(h[4:]))
		case le.Uint32(h[8:]) != vmdkFlags:
			return fmt.Errorf("flags %#x", le.Uint32(h[8:]))
		case le.Uint64(h[20:]) != vmdkGrainSecs || le.Uint32(h[44:]) != vmdkGTEntries:
			return fmt.Errorf("grain size or table size")
		case string(h[73:77]) != "\n \r\n":
			return fmt.Errorf("newline detection bytes")
		case le.Uint16(h[77:]) != 1:
			return fmt.Errorf("compression %d", le.Uint16(h[77:]))
		}
		return nil
	}
	if err := check(hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if le.Uint64(hdr[56:]) != vmdkGDAtEnd {
		return nil, fmt.Errorf("header grain directory offset is not GD_AT_END")
	}
	capacity := int64(le.Uint64(hdr[12:]))
	descOff, descSecs := int64(le.Uint64(hdr[28:])), int64(le.Uint64(hdr[36:]))
	desc := string(bytes.TrimRight(b[descOff*512:(descOff+descSecs)*512], "\x00"))
	for _, want := range []string{
		"# Disk DescriptorFile\n", "createType=\"streamOptimized\"\n",
		fmt.Sprintf("RW %d SPARSE \"disk.vmdk\"\n", capacity), "ddb.adapterType = \"lsilogic\"\n",
	} {
		if !strings.Contains(desc, want) {
			return nil, fmt.Errorf("descriptor lacks %q:\n%s", want, desc)
		}
	}

	// Walk the stream.
	type grain struct {
		lba  int64
		data []byte
	}
	grains := map[int64]grain{} // by marker sector
	var gtSecs []int64          // sectors of grain tables seen
	var gdSec, footSec int64 = -1, -1
	lastLBA := int64(-1)
	off := int64(le.Uint64(hdr[64:])) * 512
	for {
		if off+512 > int64(len(b)) {
			return nil, fmt.Errorf("stream ends without an end-of-stream marker")
		}
		val, size := int64(le.Uint64(b[off:])), int64(le.Uint32(b[off+8:]))
		if size != 0 {
			if val <= lastLBA || val%vmdkGrainSecs != 0 || val >= capacity {
				return nil, fmt.Errorf("grain at sector %d has LBA %d", off/512, val)
			}
			lastLBA = val
			zr, err := zlib.NewReader(bytes.NewReader(b[off+12 : off+12+size]))
			if err != nil {
				return nil, fmt.Errorf("grain at sector %d: %w", off/512, err)
			}
			data, err := io.ReadAll(zr)
			if err != nil {
				return nil, fmt.Errorf("grain at sector %d: %w", off/512, err)
			}
			if len(data) != vmdkGrainSize {
				return nil, fmt.Errorf("grain at sector %d: %d bytes", off/512, len(data))
			}
			grains[off/512] = grain{val, data}
			off = roundUp(off+12+size, 512)
			continue
		}
		typ := le.Uint32(b[off+12:])
		if !isZero(b[off+16 : off+512]) {
			return nil, fmt.Errorf("marker at sector %d not padded with zeros", off/512)
		}
		off += 512
		switch typ {
		case vmdkMarkerGT:
			if val != vmdkGTSecs {
				return nil, fmt.Errorf("grain table of %d sectors", val)
			}
			gtSecs = append(gtSecs, off/512)
		case vmdkMarkerGD:
			gdSec = off / 512
		case vmdkMarkerFoot:
			if val != 1 {
				return nil, fmt.Errorf("footer of %d sectors", val)
			}
			footSec = off / 512
		case vmdkMarkerEOS:
			if val != 0 {
				return nil, fmt.Errorf("end-of-stream marker with value %d", val)
			}
			if off != int64(len(b)) {
				return nil, fmt.Errorf("data after the end-of-stream marker")
			}
		default:
			return nil, fmt.Errorf("marker type %d", typ)
		}
		if typ == vmdkMarkerEOS {
			break
		}
		off += val * 512
	}
	if footSec != int64(len(b))/512-2 {
		return nil, fmt.Errorf("footer at sector %d", footSec)
	}
	foot := b[footSec*512 : footSec*512+512]
	if err := check(foot); err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	if !bytes.Equal(foot[:56], hdr[:56]) || !bytes.Equal(foot[64:], hdr[64:]) {
		return nil, fmt.Errorf("footer differs from the header beyond the directory offset")
	}
	if int64(le.Uint64(foot[56:])) != gdSec {
		return nil, fmt.Errorf("footer names directory at sector %d, stream has it at %d", le.Uint64(foot[56:]), gdSec)
	}

	// Follow the directory.
	v := &vimage{size: capacity * 512, unit: vmdkGrainSize, units: map[int64][]byte{}, sparse: true}
	tables := divUp(divUp(capacity, vmdkGrainSecs), vmdkGTEntries)
	seenGT := map[int64]bool{}
	for i := range tables {
		gt := int64(le.Uint32(b[gdSec*512+i*4:]))
		if gt == 0 {
			continue
		}
		seenGT[gt] = true
		for j := range int64(vmdkGTEntries) {
			s := int64(le.Uint32(b[gt*512+j*4:]))
			if s == 0 {
				continue
			}
			g, ok := grains[s]
			if !ok {
				return nil, fmt.Errorf("table %d entry %d points to sector %d, not a grain", i, j, s)
			}
			u := i*vmdkGTEntries + j
			if g.lba != u*vmdkGrainSecs {
				return nil, fmt.Errorf("grain %d maps a marker for LBA %d", u, g.lba)
			}
			v.units[u] = g.data
		}
	}
	if len(v.units) != len(grains) {
		return nil, fmt.Errorf("%d grains in the stream, %d mapped", len(grains), len(v.units))
	}
	if len(seenGT) != len(gtSecs) {
		return nil, fmt.Errorf("%d grain tables in the stream, %d in the directory", len(gtSecs), len(seenGT))
	}
	for _, s := range gtSecs {
		if !seenGT[s] {
			return nil, fmt.Errorf("grain table at sector %d not in the directory", s)
		}
	}
	return v, nil
}
