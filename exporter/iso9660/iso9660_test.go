package iso9660

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
	"github.com/lkbuild/lkbuild/exporter/internal/treetest"
)

func writeISO(t *testing.T, files []File, o Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.iso")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, files, o); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRockRidgeRoundTrip writes a tree and reads it back with another
// implementation, comparing every entry's type, permissions, owner, link
// target, hard links and contents. (The kernel's isofs reads it in the
// iso-bios and iso-efi boot tests.)
func TestRockRidgeRoundTrip(t *testing.T) {
	root := treetest.Build(t)
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	treetest.ClampTimes(entries)
	iso := writeISO(t, FromTree(root, entries, ""), Options{VolumeID: "LINUXKIT", ModTime: time.Unix(1700000000, 0)})

	// libisofs (xorriso) reads it back into a directory: every entry but
	// device nodes (whose PN encoding is checked in TestDeviceNumbers)
	// must come back the same.
	if _, err := exec.LookPath("osirrox"); err != nil {
		t.Skip("osirrox not installed (apt package xorriso; make env installs it)")
	}
	out := filepath.Join(t.TempDir(), "x")
	if msg, err := exec.Command("osirrox", "-indev", iso, "-hardlinks", "on", "-extract", "/", out).CombinedOutput(); err != nil {
		t.Fatalf("osirrox cannot extract the image: %v\n%s", err, msg)
	}
	got, err := fstree.Walk(out, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Symlink owners and hard links, from xorriso's own listing: a hard
	// link shares its first path's extent.
	list, err := exec.Command("xorriso", "-indev", iso, "-find", "/", "-exec", "lsdl", "--", "-find", "/bin", "-type", "f", "-exec", "report_lba").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, list)
	}
	if !regexp.MustCompile(`(?m)^lrwxrwxrwx +1 7 +8 .*'/etc/rel' -> '../bin/busybox'$`).Match(list) && os.Geteuid() == 0 {
		t.Errorf("etc/rel should be a symlink owned by 7:8:\n%s", list)
	}
	lbas := regexp.MustCompile(`(?m)^File data lba: +0 , +(\d+) ,.*'/bin/(busybox|hardlink)'$`).FindAllSubmatch(list, -1)
	if len(lbas) != 2 || string(lbas[0][1]) != string(lbas[1][1]) {
		t.Errorf("bin/hardlink must share bin/busybox's extent: %q", lbas)
	}
	want := treetest.Describe(t, root, treetest.WithoutDevices(entries))
	if have := treetest.Describe(t, out, treetest.WithoutDevices(got)); have != want {
		t.Errorf("tree read back by libisofs differs:\n%s", treetest.DiffLines(want, have))
	}
}

// TestDeviceNumbers checks the PN entry: major in the high word and minor
// in the low one, which Linux's isofs decodes as MKDEV(high, low) (as
// genisoimage writes them on 64-bit Linux).
func TestDeviceNumbers(t *testing.T) {
	n := &node{f: &File{Entry: fstree.Entry{Path: "dev/sdq", Mode: os.ModeDevice | 0o660, Rdev: mkdev(65, 256)}}, ino: 9}
	ents, err := rockRidge(n, true)
	if err != nil {
		t.Fatal(err)
	}
	var pn []byte
	for _, e := range ents {
		if string(e[:2]) == "PN" {
			pn = e
		}
	}
	if len(pn) != 20 || binary.LittleEndian.Uint32(pn[4:]) != 65 || binary.BigEndian.Uint32(pn[8:]) != 65 ||
		binary.LittleEndian.Uint32(pn[12:]) != 256 || binary.BigEndian.Uint32(pn[16:]) != 256 {
		t.Errorf("PN entry % x, want major 65 and minor 256 in both byte orders", pn)
	}
	if px := ents[0]; binary.LittleEndian.Uint32(px[4:])&0o170000 != 0o060000 {
		t.Errorf("PX mode %o, want a block device", binary.LittleEndian.Uint32(px[4:]))
	}
}

// mkdev encodes a Linux dev_t the way glibc's makedev does.
func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

func TestElTorito(t *testing.T) {
	isolinux := bytes.Repeat([]byte{0xfa}, 4096)   // stands in for isolinux.bin
	efi := bytes.Repeat([]byte{0xef}, 65536*512+1) // over the 16-bit count
	dir := fstree.Entry{Mode: os.ModeDir | 0o755}
	file := func(p string, data []byte, hidden bool) File {
		return File{Entry: fstree.Entry{Path: p, Mode: 0o644}, Data: data, Hidden: hidden}
	}
	d := dir
	d.Path = "isolinux"
	files := []File{{Entry: d}, file("isolinux/isolinux.bin", isolinux, false), file("isolinux/isolinux.cfg", []byte("DEFAULT linux\n"), false),
		file("boot.img", efi, true)}
	o := Options{VolumeID: "LINUXKIT", ModTime: time.Unix(1700000000, 0), Catalog: "isolinux/boot.cat", Boot: []BootEntry{
		{Path: "isolinux/isolinux.bin", Platform: X86, LoadSectors: 4, BootInfoTable: true},
		{Path: "boot.img", Platform: EFI},
	}}
	iso := writeISO(t, files, o)
	raw, _ := os.ReadFile(iso)
	sector := func(n uint32) []byte { return raw[n*SectorSize : (n+1)*SectorSize] }
	br := sector(17)
	if br[0] != 0 || string(br[1:6]) != "CD001" || !strings.HasPrefix(string(br[7:]), "EL TORITO SPECIFICATION") {
		t.Fatal("no El Torito boot record at sector 17")
	}
	cat := sector(binary.LittleEndian.Uint32(br[71:]))
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(cat[i:])
	}
	if cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xaa || sum != 0 {
		t.Errorf("bad validation entry % x (checksum %d)", cat[:32], sum)
	}
	def := cat[32:64]
	biosLBA := binary.LittleEndian.Uint32(def[8:])
	if def[0] != 0x88 || binary.LittleEndian.Uint16(def[6:]) != 4 {
		t.Errorf("default entry % x", def)
	}
	img := raw[biosLBA*SectorSize : biosLBA*SectorSize+4096]
	if binary.LittleEndian.Uint32(img[8:]) != 16 || binary.LittleEndian.Uint32(img[12:]) != biosLBA || binary.LittleEndian.Uint32(img[16:]) != 4096 {
		t.Errorf("boot info table % x", img[8:24])
	}
	var csum uint32
	for i := 64; i < len(img); i += 4 {
		csum += binary.LittleEndian.Uint32(img[i:])
	}
	if binary.LittleEndian.Uint32(img[20:]) != csum {
		t.Error("boot info table checksum wrong")
	}
	if cat[64] != 0x91 || cat[65] != byte(EFI) || cat[96] != 0x88 {
		t.Errorf("EFI section % x", cat[64:128])
	}
	efiLBA := binary.LittleEndian.Uint32(cat[104:])
	if got := binary.LittleEndian.Uint16(cat[102:]); got != 1 {
		t.Errorf("EFI image of %d sectors: load count %d, want 1 (whole rest of the disc)", len(efi)/512, got)
	}
	if !bytes.Equal(raw[efiLBA*SectorSize:efiLBA*SectorSize+uint32(len(efi))], efi) {
		t.Error("EFI image not at its catalog LBA")
	}
	if _, err := exec.LookPath("xorriso"); err == nil {
		out, err := exec.Command("xorriso", "-indev", iso, "-report_el_torito", "plain").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "BIOS") || !strings.Contains(string(out), "UEFI") {
			t.Errorf("xorriso -report_el_torito: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "boot.img") {
			t.Error("the hidden EFI image has a directory record")
		}
	}
}

func TestDeterministicAndErrors(t *testing.T) {
	root := treetest.Build(t)
	entries, _ := fstree.Walk(root, fstree.Options{})
	a := writeISO(t, FromTree(root, entries, ""), Options{ModTime: time.Unix(1, 0)})
	b := writeISO(t, FromTree(root, entries, ""), Options{ModTime: time.Unix(1, 0)})
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two writes of the same tree differ")
	}
	for name, files := range map[string][]File{
		"no parent": {{Entry: fstree.Entry{Path: "a/b", Mode: 0o644}}},
		"unclean":   {{Entry: fstree.Entry{Path: "a/../b", Mode: 0o644}}},
		"twice":     {{Entry: fstree.Entry{Path: "a", Mode: 0o644}}, {Entry: fstree.Entry{Path: "a", Mode: 0o644}}},
		"too big":   {{Entry: fstree.Entry{Path: "a", Mode: 0o644, Size: 1 << 32}, Src: "/dev/zero"}},
	} {
		if err := Write(&bytes.Buffer{}, files, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestHybridMBR(t *testing.T) {
	tmpl := bytes.Repeat([]byte{0x33}, 432)
	files := []File{{Entry: fstree.Entry{Path: "isolinux", Mode: os.ModeDir | 0o755}},
		{Entry: fstree.Entry{Path: "isolinux/isolinux.bin", Mode: 0o644}, Data: bytes.Repeat([]byte{0xfa}, 4096)}}
	var isoLBA uint32
	o := Options{PadTo: HybridPad, Catalog: "isolinux/boot.cat",
		Boot: []BootEntry{{Path: "isolinux/isolinux.bin", LoadSectors: 4, BootInfoTable: true}},
		SystemArea: func(lba func(string) (uint32, bool), total int64) ([]byte, error) {
			isoLBA, _ = lba("isolinux/isolinux.bin")
			return HybridMBR(tmpl, isoLBA, total, 0x11223344)
		}}
	raw, _ := os.ReadFile(writeISO(t, files, o))
	if len(raw)%HybridPad != 0 {
		t.Fatalf("image of %d bytes not padded to 1 MiB", len(raw))
	}
	if !bytes.Equal(raw[:432], tmpl) || raw[510] != 0x55 || raw[511] != 0xaa {
		t.Fatal("no MBR with the template at the start")
	}
	if got := binary.LittleEndian.Uint32(raw[432:]); got != isoLBA*4 || isoLBA == 0 {
		t.Errorf("isolinux.bin pointer %d, want %d", got, isoLBA*4)
	}
	p := raw[446:462]
	if p[0] != 0x80 || p[4] != 0x17 || binary.LittleEndian.Uint32(p[8:]) != 0 || int(binary.LittleEndian.Uint32(p[12:]))*512 != len(raw) {
		t.Errorf("partition entry % x", p)
	}
	if string(raw[16*SectorSize+1:16*SectorSize+6]) != "CD001" {
		t.Error("the ISO volume descriptors must follow the system area")
	}
	if _, err := exec.LookPath("sfdisk"); err == nil {
		out, err := exec.Command("sfdisk", "-d", writeISO(t, files, o)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "type=17, bootable") {
			t.Errorf("sfdisk -d: %v\n%s", err, out)
		}
	}
	if _, err := HybridMBR(tmpl, 1, 1000, 0); err == nil {
		t.Error("unpadded size accepted")
	}
}
