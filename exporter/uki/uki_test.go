package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// minimalStub builds a PE32+ image with one .text section and room in its
// headers for extra section headers.
func minimalStub(headerBytes uint32) []byte {
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
	binary.LittleEndian.PutUint16(b[opt:], magicPE32Plus)
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

func TestWriteAppendsSections(t *testing.T) {
	kernel := bytes.Repeat([]byte("K"), 5000)
	initrd := bytes.Repeat([]byte("I"), 70000)
	sections := []Section{
		{Name: ".osrel", Size: int64(len(OSRelease("x"))), Data: bytes.NewReader(OSRelease("x"))},
		{Name: ".cmdline", Size: 15, Data: strings.NewReader("console=ttyS0 x")},
		{Name: ".linux", Size: int64(len(kernel)), Data: bytes.NewReader(kernel)},
		{Name: ".initrd", Size: int64(len(initrd)), Data: bytes.NewReader(initrd)},
	}
	var out bytes.Buffer
	if err := Write(&out, minimalStub(0x400), sections); err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("result does not parse as PE: %v", err)
	}
	if len(f.Sections) != 5 {
		t.Fatalf("%d sections, want 5", len(f.Sections))
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	if oh.CheckSum != 0 {
		t.Errorf("checksum %#x, want it cleared", oh.CheckSum)
	}
	want := map[string][]byte{".osrel": OSRelease("x"), ".cmdline": []byte("console=ttyS0 x"), ".linux": kernel, ".initrd": initrd}
	var prevEnd uint32
	for _, s := range f.Sections {
		if s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0 {
			t.Errorf("%s: unaligned (va %#x, file %#x)", s.Name, s.VirtualAddress, s.Offset)
		}
		if s.VirtualAddress < prevEnd {
			t.Errorf("%s overlaps the section before it", s.Name)
		}
		prevEnd = s.VirtualAddress + max(s.VirtualSize, s.Size)
		if w, ok := want[s.Name]; ok {
			got, err := io.ReadAll(io.LimitReader(s.Open(), int64(s.VirtualSize)))
			if err != nil || !bytes.Equal(got, w) {
				t.Errorf("%s: contents differ (%d bytes, err %v)", s.Name, len(got), err)
			}
		}
	}
	if oh.SizeOfImage < prevEnd || oh.SizeOfImage%oh.SectionAlignment != 0 {
		t.Errorf("SizeOfImage %#x does not cover the sections (end %#x)", oh.SizeOfImage, prevEnd)
	}
	if int64(out.Len())%int64(oh.FileAlignment) != 0 {
		t.Errorf("file length %d not a multiple of the file alignment", out.Len())
	}
}

func TestWriteErrors(t *testing.T) {
	one := []Section{{Name: ".linux", Size: 1, Data: strings.NewReader("k")}}
	for name, tc := range map[string]struct {
		stub     []byte
		sections []Section
		want     string
	}{
		"not PE":        {[]byte("hello, this is not an EFI binary at all......................."), one, "no MZ header"},
		"no room":       {minimalStub(0x148), one, "no room"},
		"long name":     {minimalStub(0x400), []Section{{Name: ".toolongname", Size: 1, Data: strings.NewReader("k")}}, "1 to 8 bytes"},
		"short data":    {minimalStub(0x400), []Section{{Name: ".linux", Size: 10, Data: strings.NewReader("k")}}, "short data"},
		"negative size": {minimalStub(0x400), []Section{{Name: ".linux", Size: -1, Data: strings.NewReader("")}}, "out of range"},
	} {
		err := Write(io.Discard, tc.stub, tc.sections)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}
