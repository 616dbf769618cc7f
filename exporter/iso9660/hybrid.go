package iso9660

import (
	"encoding/binary"
	"fmt"
)

// Hybrid geometry: 64 heads and 32 sectors per track, so one cylinder is
// 1 MiB; images are padded to whole cylinders (Options.PadTo).
const (
	hybridHeads   = 64
	hybridSectors = 32
	// HybridPad is the padding an isohybrid image needs.
	HybridPad = hybridHeads * hybridSectors * 512
)

// HybridMBR returns the MBR that makes an ISOLINUX image bootable from a
// disk (a USB stick) as well as from a CD, as syslinux's isohybrid writes
// it: the boot code template (isohdpfx.bin, 432 bytes), the 512-byte
// sector of isolinux.bin at byte 432, the disk signature id, and one
// bootable partition (type 0x17) spanning the whole padded image of size
// bytes.
func HybridMBR(template []byte, isolinuxLBA uint32, size int64, id uint32) ([]byte, error) {
	if len(template) != 432 {
		return nil, fmt.Errorf("isohybrid MBR template is %d bytes, want 432", len(template))
	}
	if size%HybridPad != 0 || size <= 0 || size/512 > 1<<32-1 {
		return nil, fmt.Errorf("image size %d is not a positive whole number of 1 MiB cylinders below 2 TiB", size)
	}
	mbr := make([]byte, 512)
	copy(mbr, template)
	binary.LittleEndian.PutUint32(mbr[432:], isolinuxLBA*4)
	binary.LittleEndian.PutUint32(mbr[440:], id)
	sectors := uint32(size / 512)
	p := mbr[446:462]
	p[0] = 0x80
	copy(p[1:4], chs(0))
	p[4] = 0x17
	copy(p[5:8], chs(sectors-1))
	binary.LittleEndian.PutUint32(p[8:], 0)
	binary.LittleEndian.PutUint32(p[12:], sectors)
	mbr[510], mbr[511] = 0x55, 0xaa
	return mbr, nil
}

// chs encodes a sector number in the MBR's cylinder/head/sector form for
// the hybrid geometry (cylinders above 1023 are capped, as usual).
func chs(lba uint32) []byte {
	c := lba / (hybridHeads * hybridSectors)
	h := (lba / hybridSectors) % hybridHeads
	s := lba%hybridSectors + 1
	if c > 1023 {
		c, h, s = 1023, hybridHeads-1, hybridSectors
	}
	return []byte{byte(h), byte(s) | byte(c>>2)&0xc0, byte(c)}
}
