// Package petest builds tiny PE files for the exporter tests.
package petest

import "encoding/binary"

// Stub builds a PE32+ EFI application with one .text section and room in its
// headers for extra section headers.
func Stub(headerBytes uint32) []byte {
	const peOff = 0x40
	b := make([]byte, 0x400+0x200)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], peOff)
	copy(b[peOff:], "PE\x00\x00")
	coff := peOff + 4
	binary.LittleEndian.PutUint16(b[coff:], 0x8664)
	binary.LittleEndian.PutUint16(b[coff+2:], 1)
	binary.LittleEndian.PutUint16(b[coff+16:], 240)
	binary.LittleEndian.PutUint16(b[coff+18:], 0x22)
	opt := coff + 20
	binary.LittleEndian.PutUint16(b[opt:], 0x20b)
	binary.LittleEndian.PutUint32(b[opt+16:], 0x1000) // entry point
	binary.LittleEndian.PutUint32(b[opt+32:], 0x1000) // section alignment
	binary.LittleEndian.PutUint32(b[opt+36:], 0x200)  // file alignment
	binary.LittleEndian.PutUint32(b[opt+56:], 0x2000) // size of image
	binary.LittleEndian.PutUint32(b[opt+60:], headerBytes)
	binary.LittleEndian.PutUint32(b[opt+64:], 0x1234) // checksum
	binary.LittleEndian.PutUint16(b[opt+68:], 10)     // EFI application
	binary.LittleEndian.PutUint32(b[opt+108:], 16)
	sec := opt + 240
	copy(b[sec:], ".text")
	binary.LittleEndian.PutUint32(b[sec+8:], 0x10)
	binary.LittleEndian.PutUint32(b[sec+12:], 0x1000)
	binary.LittleEndian.PutUint32(b[sec+16:], 0x200)
	binary.LittleEndian.PutUint32(b[sec+20:], 0x400)
	binary.LittleEndian.PutUint32(b[sec+36:], 0x60000020)
	copy(b[0x400:], "\xc3 stub code")
	return b
}
