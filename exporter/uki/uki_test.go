package uki

import (
	"bytes"
	"debug/pe"
	"io"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/exporter/internal/petest"
)

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
	if err := Write(&out, petest.Stub(0x400), sections); err != nil {
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
		"no room":       {petest.Stub(0x148), one, "no room"},
		"long name":     {petest.Stub(0x400), []Section{{Name: ".toolongname", Size: 1, Data: strings.NewReader("k")}}, "1 to 8 bytes"},
		"short data":    {petest.Stub(0x400), []Section{{Name: ".linux", Size: 10, Data: strings.NewReader("k")}}, "short data"},
		"negative size": {petest.Stub(0x400), []Section{{Name: ".linux", Size: -1, Data: strings.NewReader("")}}, "out of range"},
	} {
		err := Write(io.Discard, tc.stub, tc.sections)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}
