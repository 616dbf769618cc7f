package vdisk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// parseVHD reads a fixed or dynamic VHD as written by WriteVHD and
// WriteDynamicVHD, checking checksums, the geometry and the layout.
func parseVHD(b []byte, wantTime time.Time) (*vimage, error) {
	be := binary.BigEndian
	if len(b) < 512 || len(b)%512 != 0 {
		return nil, fmt.Errorf("file size %d", len(b))
	}
	foot := b[len(b)-512:]
	if string(foot[:8]) != "conectix" {
		return nil, fmt.Errorf("footer cookie %q", foot[:8])
	}
	if err := checkVHDChecksum(foot, 64); err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	if ts := be.Uint32(foot[24:]); int64(ts) != wantTime.Unix()-vhdEpoch.Unix() {
		return nil, fmt.Errorf("timestamp %d", ts)
	}
	size := int64(be.Uint64(foot[48:]))
	if orig := int64(be.Uint64(foot[40:])); orig != size {
		return nil, fmt.Errorf("original size %d, current size %d", orig, size)
	}
	chs := int64(be.Uint16(foot[56:])) * int64(foot[58]) * int64(foot[59])
	if chs != size/512 && chs != vhdMaxCHSSectors {
		return nil, fmt.Errorf("CHS describes %d sectors, size is %d", chs, size/512)
	}
	if foot[68+6]>>4 != 8 {
		return nil, fmt.Errorf("unique id is not a version 8 UUID")
	}
	switch typ := be.Uint32(foot[60:]); typ {
	case vhdFixed:
		if be.Uint64(foot[16:]) != ^uint64(0) {
			return nil, fmt.Errorf("fixed disk with data offset")
		}
		if int64(len(b)) != size+512 {
			return nil, fmt.Errorf("fixed disk file %d bytes for size %d", len(b), size)
		}
		v := &vimage{size: size, unit: 64 << 10, units: map[int64][]byte{}}
		for u := int64(0); u*v.unit < size; u++ {
			v.units[u] = b[u*v.unit : min((u+1)*v.unit, size)]
		}
		return v, nil
	case vhdDynamic:
	default:
		return nil, fmt.Errorf("disk type %d", typ)
	}

	if !bytes.Equal(b[:512], foot) {
		return nil, fmt.Errorf("footer copy differs from footer")
	}
	hOff := int64(be.Uint64(foot[16:]))
	h := b[hOff : hOff+1024]
	if string(h[:8]) != "cxsparse" {
		return nil, fmt.Errorf("dynamic header cookie %q", h[:8])
	}
	if err := checkVHDChecksum(h, 36); err != nil {
		return nil, fmt.Errorf("dynamic header: %w", err)
	}
	if be.Uint64(h[8:]) != ^uint64(0) || be.Uint32(h[24:]) != 0x00010000 {
		return nil, fmt.Errorf("dynamic header fields")
	}
	batOff := int64(be.Uint64(h[16:]))
	entries := int64(be.Uint32(h[28:]))
	blockSize := int64(be.Uint32(h[32:]))
	if blockSize != vhdBlockSize || entries != divUp(size, blockSize) {
		return nil, fmt.Errorf("block size %d, %d BAT entries for size %d", blockSize, entries, size)
	}
	v := &vimage{size: size, unit: blockSize, units: map[int64][]byte{}, sparse: true}
	// Blocks must follow the BAT back to back, in order, then the footer.
	next := roundUp(batOff+entries*4, 512)
	for i := range entries {
		e := be.Uint32(b[batOff+i*4:])
		if e == 0xFFFFFFFF {
			continue
		}
		off := int64(e) * 512
		if off != next {
			return nil, fmt.Errorf("block %d at %d, expected %d", i, off, next)
		}
		if !bytes.Equal(b[off:off+512], bytes.Repeat([]byte{0xff}, 512)) {
			return nil, fmt.Errorf("block %d bitmap not all set", i)
		}
		v.units[i] = b[off+512 : off+512+blockSize]
		next = off + 512 + blockSize
	}
	if next+512 != int64(len(b)) {
		return nil, fmt.Errorf("footer at %d, blocks end at %d", len(b)-512, next)
	}
	return v, nil
}

func checkVHDChecksum(b []byte, at int) error {
	c := make([]byte, len(b))
	copy(c, b)
	binary.BigEndian.PutUint32(c[at:], 0)
	if got, want := binary.BigEndian.Uint32(b[at:]), vhdChecksum(c); got != want {
		return fmt.Errorf("checksum %#x, want %#x", got, want)
	}
	return nil
}
