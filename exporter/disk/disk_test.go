package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

func testFiles(t *testing.T) []File {
	t.Helper()
	big := filepath.Join(t.TempDir(), "kernel")
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return []File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("MZ boot manager")},
		{Path: "EFI/Linux/linuxkit.efi", Src: big},
		{Path: "loader/loader.conf", Data: []byte("timeout 0\n")},
		{Path: "kernel", Src: big},
	}
}

func readFAT(t *testing.T, img string) *fat32.FileSystem {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	fs, err := fat32.Read(file.New(f, true), fi.Size()-PartitionOffset, PartitionOffset, sector)
	if err != nil {
		t.Fatalf("reading the FAT32 partition back: %v", err)
	}
	return fs
}

func readBack(t *testing.T, fs *fat32.FileSystem, p string) []byte {
	t.Helper()
	r, err := fs.OpenFile("/"+p, os.O_RDONLY)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteGPT(t *testing.T) {
	files := testFiles(t)
	img := filepath.Join(t.TempDir(), "efi.img")
	epoch := time.Unix(1700000000, 0)
	if err := Write(context.Background(), img, Options{Scheme: GPT, Files: files, ModTime: epoch}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img)
	want, _ := MinSize(GPT, files)
	if fi.Size() != want || want > 64*mib {
		t.Errorf("disk is %d bytes, want the minimum %d (below 64 MiB)", fi.Size(), want)
	}
	f, _ := os.Open(img)
	defer f.Close()
	tbl, err := gpt.Read(file.New(f, true), sector, sector)
	if err != nil {
		t.Fatalf("GPT: %v", err)
	}
	if len(tbl.Partitions) != 1 || tbl.Partitions[0].Type != gpt.EFISystemPartition || tbl.Partitions[0].Start != 2048 {
		t.Fatalf("partitions: %+v", tbl.Partitions)
	}
	fs := readFAT(t, img)
	for _, fl := range files {
		got := readBack(t, fs, fl.Path)
		wantData := fl.Data
		if fl.Src != "" {
			wantData, _ = os.ReadFile(fl.Src)
		}
		if !bytes.Equal(got, wantData) {
			t.Errorf("%s: %d bytes read back, want %d", fl.Path, len(got), len(wantData))
		}
	}
	if _, err := exec.LookPath("sgdisk"); err == nil {
		out, err := exec.Command("sgdisk", "-v", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Errorf("sgdisk -v: %v\n%s", err, out)
		}
	}
	fsckPartition(t, img)
}

func TestWriteMBR(t *testing.T) {
	files := testFiles(t)
	img := filepath.Join(t.TempDir(), "bios.img")
	boot := bytes.Repeat([]byte{0xeb}, 440)
	core := bytes.Repeat([]byte{0xc0}, 137137)
	size := int64(100 * mib)
	if err := Write(context.Background(), img, Options{Scheme: MBR, Files: files, BootCode: boot, PostMBR: core, Size: size}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != size {
		t.Errorf("disk is %d bytes, want %d", len(raw), size)
	}
	if !bytes.Equal(raw[:440], boot) || !bytes.Equal(raw[512:512+len(core)], core) {
		t.Error("boot code not in place")
	}
	if raw[510] != 0x55 || raw[511] != 0xaa {
		t.Error("no MBR signature")
	}
	f, _ := os.Open(img)
	defer f.Close()
	tbl, err := mbr.Read(file.New(f, true), sector, sector)
	if err != nil {
		t.Fatal(err)
	}
	p := tbl.Partitions[0]
	if !p.Bootable || p.Type != mbr.Fat32LBA || p.Start != 2048 || int64(p.Start+p.Size)*sector != size {
		t.Errorf("partition 1: %+v (want bootable FAT32 LBA from 2048 filling the disk)", p)
	}
	if got := readBack(t, readFAT(t, img), "loader/loader.conf"); string(got) != "timeout 0\n" {
		t.Errorf("loader.conf: %q", got)
	}
	fsckPartition(t, img)
}

// fsckPartition runs dosfstools' checker on the partition when it is
// installed (make env installs it).
func fsckPartition(t *testing.T, img string) {
	t.Helper()
	if _, err := exec.LookPath("fsck.fat"); err != nil {
		t.Log("fsck.fat not installed: skipping the dosfstools check")
		return
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(t.TempDir(), "part")
	end := len(raw)
	if string(raw[512:520]) == "EFI PART" {
		end -= gptTail
	}
	if err := os.WriteFile(part, raw[PartitionOffset:end], 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput()
	if err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
}

func TestWriteReproducible(t *testing.T) {
	files := testFiles(t)
	dir := t.TempDir()
	write := func(name string, fl []File) []byte {
		p := filepath.Join(dir, name)
		if err := Write(context.Background(), p, Options{Scheme: GPT, Files: fl, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		return b
	}
	a, b := write("a", files), write("b", files)
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same files differ")
	}
	changed := append([]File(nil), files...)
	changed[2] = File{Path: "loader/loader.conf", Data: []byte("timeout 1\n")}
	c := write("c", changed)
	if bytes.Equal(a[512:1024], c[512:1024]) {
		t.Error("different contents kept the same disk GUID")
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"too small":    {Options{Files: []File{{Path: "a", Data: []byte("x")}}, Size: mib}, "too small"},
		"boot code":    {Options{BootCode: make([]byte, 441)}, "at most 440"},
		"unclean path": {Options{Files: []File{{Path: "/a/../b", Data: []byte("x")}}}, "clean relative path"},
		"twice":        {Options{Files: []File{{Path: "a", Data: nil}, {Path: "a", Data: nil}}}, "given twice"},
		"missing src":  {Options{Files: []File{{Path: "a", Src: filepath.Join(dir, "nope")}}}, "no such file"},
	} {
		err := Write(context.Background(), filepath.Join(dir, "d.img"), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestWriteNoTable(t *testing.T) {
	img := filepath.Join(t.TempDir(), "efiboot.img")
	files := []File{{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("MZ uki")}}
	if err := Write(context.Background(), img, Options{Scheme: NoTable, Files: files}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(img)
	if string(raw[0x52:0x5a]) != "FAT32   " || raw[510] != 0x55 {
		t.Fatalf("no FAT32 boot sector at byte 0: % x", raw[:16])
	}
	f, _ := os.Open(img)
	defer f.Close()
	fs, err := fat32.Read(file.New(f, true), int64(len(raw)), 0, sector)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, fs, "EFI/BOOT/BOOTX64.EFI"); string(got) != "MZ uki" {
		t.Errorf("BOOTX64.EFI: %q", got)
	}
	if err := Write(context.Background(), img, Options{Scheme: NoTable, BootCode: []byte{1}}); err == nil {
		t.Error("boot code without a partition table: no error")
	}
	if _, err := exec.LookPath("fsck.fat"); err == nil {
		if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat: %v\n%s", err, out)
		}
	}
}

// TestWriteFAT16 writes a bare FAT16 image (an El Torito EFI image): far
// smaller than FAT32's minimum, readable back, and clean for fsck.fat
// (go-diskfs leaks a cluster that the fix-up frees).
func TestWriteFAT16(t *testing.T) {
	files := testFiles(t)
	img := filepath.Join(t.TempDir(), "efiboot.img")
	if err := Write(context.Background(), img, Options{Scheme: NoTable, FAT16: true, Files: files, ModTime: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(img)
	if string(raw[0x36:0x3e]) != "FAT16   " {
		t.Fatalf("not FAT16: % x", raw[0x36:0x3e])
	}
	if len(raw) > 16*mib {
		t.Errorf("FAT16 image of %d MiB for ~10 MB of files, want at most 16", len(raw)/mib)
	}
	f, _ := os.Open(img)
	defer f.Close()
	fs, err := fat16.Read(file.New(f, true), int64(len(raw)), 0, sector)
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range files {
		r, err := fs.OpenFile("/"+fl.Path, os.O_RDONLY)
		if err != nil {
			t.Fatalf("%s: %v", fl.Path, err)
		}
		got, _ := io.ReadAll(r)
		want := fl.Data
		if fl.Src != "" {
			want, _ = os.ReadFile(fl.Src)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes read back, want %d", fl.Path, len(got), len(want))
		}
	}
	if _, err := exec.LookPath("fsck.fat"); err == nil {
		if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat: %v\n%s", err, out)
		}
	}
}

// TestFATLayoutSweep checks the geometry at every MiB from 8 MiB to 4 GiB
// and every GiB up to 2 TiB, for FAT16 and FAT32 wherever the type allows
// the size: each FAT has an entry for every data cluster plus the two
// reserved ones (go-diskfs v1.9.4 left two clusters without one at sizes
// such as 64 MiB), is the smallest that does, and the areas fit.
func TestFATLayoutSweep(t *testing.T) {
	var sizes []int64
	for s := int64(8 * mib); s <= 4<<30; s += mib {
		sizes = append(sizes, s)
	}
	for s := int64(5 << 30); s < 2<<40; s += 1 << 30 {
		sizes = append(sizes, s)
	}
	sizes = append(sizes, 2<<40-sector)
	checked := 0
	for _, size := range sizes {
		for _, fat16 := range []bool{false, true} {
			if fat16 && size > maxFAT16 || !fat16 && size < minFAT32 {
				continue
			}
			g, err := fatLayout(size, 0, fat16)
			if err != nil {
				t.Fatalf("%d bytes (FAT16 %v): %v", size, fat16, err)
			}
			perSector := fatSector / g.entryBytes()
			entries := g.fatSectors * perSector
			if entries < g.clusters+2 {
				t.Fatalf("%d bytes (FAT16 %v): %d FAT entries for %d clusters", size, fat16, entries, g.clusters)
			}
			if (g.fatSectors-1)*perSector >= (g.total-g.reserved-g.rootSectors()-g.nfats*(g.fatSectors-1))/g.spc+2 {
				t.Fatalf("%d bytes (FAT16 %v): a FAT of %d sectors is larger than needed", size, fat16, g.fatSectors)
			}
			if end := g.dataStart()/fatSector + g.clusters*g.spc; end > g.total {
				t.Fatalf("%d bytes (FAT16 %v): data ends at sector %d of %d", size, fat16, end, g.total)
			}
			checked++
		}
	}
	t.Logf("%d geometries checked", checked)
	if _, err := fatLayout(2<<40, 0, false); err == nil {
		t.Error("2 TiB (2^32 sectors) accepted")
	}
}

// TestFATSizesFsck writes a FAT32 filesystem of every size in MiB from
// the smallest, 40 MiB, to 300 MiB (past the switch from 512-byte to 4 KiB
// clusters at 260 MiB), then 1, 4 and 8 GiB and 8 GiB + 1 MiB (around the
// next switch), and FAT16 images of every size from 8 MiB to 160 MiB, and
// has fsck.fat check each. go-diskfs v1.9.4 made the FAT two entries too
// short for 64, 129 and 259 MiB (raw-bios with SIZE=65M has a 64 MiB
// partition). Under -short, only those and the switch sizes.
func TestFATSizesFsck(t *testing.T) {
	if _, err := exec.LookPath("fsck.fat"); err != nil {
		t.Skip("fsck.fat not installed (apt package dosfstools; make env installs it)")
	}
	var partSizes, fat16Sizes []int64
	if testing.Short() {
		partSizes = []int64{40, 64, 129, 259, 260, 261}
		fat16Sizes = []int64{8, 9, 33, 34, 129, 130}
	} else {
		for s := int64(40); s <= 300; s++ {
			partSizes = append(partSizes, s)
		}
		for s := int64(8); s <= 160; s++ {
			fat16Sizes = append(fat16Sizes, s)
		}
	}
	partSizes = append(partSizes, 1024, 4096, 8192, 8193)
	files := []File{
		{Path: "kernel", Data: bytes.Repeat([]byte("k"), 300000)},
		{Path: "initrd.img", Data: bytes.Repeat([]byte("i"), 70000)},
		{Path: "boot/grub/grub.cfg", Data: []byte("set timeout=0\n")},
	}
	fsck := func(what, img string) {
		t.Helper()
		if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
			t.Errorf("%s: fsck.fat: %v\n%s", what, err, out)
		}
	}
	img := filepath.Join(t.TempDir(), "d.img")
	// The filesystem of an MBR disk of s+1 MiB is the bare one of s MiB
	// (fsck.fat checks a whole file, so the bare one is checked; two
	// disks are checked through their partition too).
	for _, s := range partSizes {
		if err := Write(context.Background(), img, Options{Scheme: NoTable, Files: files, Size: s * mib}); err != nil {
			t.Fatalf("%d MiB: %v", s, err)
		}
		fsck(fmt.Sprintf("FAT32 of %d MiB", s), img)
	}
	for _, s := range []int64{41, 65} {
		if err := Write(context.Background(), img, Options{Scheme: MBR, Files: files, Size: s * mib}); err != nil {
			t.Fatalf("%d MiB: %v", s, err)
		}
		fsckPartition(t, img)
	}
	for _, s := range fat16Sizes {
		if err := Write(context.Background(), img, Options{Scheme: NoTable, FAT16: true, Files: files, Size: s * mib}); err != nil {
			t.Fatalf("FAT16 %d MiB: %v", s, err)
		}
		fsck(fmt.Sprintf("FAT16 of %d MiB", s), img)
	}
}

// TestFATFileLimit: a FAT directory entry holds a file size in 32 bits, so
// a file of 4 GiB or more must be refused, not written with its size
// wrapped. 4 GiB - 1 byte is the largest that fits.
func TestFATFileLimit(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	files := []File{{Path: "EFI/BOOT/BOOTX64.EFI", Src: big}}
	for _, tc := range []struct {
		size int64
		ok   bool
	}{{1<<32 - 1, true}, {1 << 32, false}} {
		if err := os.Truncate(big, tc.size); err != nil {
			t.Fatal(err)
		}
		_, err := buildTree(files)
		if tc.ok != (err == nil) {
			t.Errorf("%d bytes: %v", tc.size, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- Write(context.Background(), filepath.Join(t.TempDir(), "d.img"), Options{Scheme: GPT, Files: files})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "EFI/BOOT/BOOTX64.EFI: 4294967296 bytes; a FAT file holds at most 4294967295 bytes") {
			t.Errorf("error %v, want the 4 GiB limit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a 4 GiB file was still being written after 10s")
	}
}

// TestWriteLinear: writing a file costs about its size in writes. The
// go-diskfs writer rewrote both FATs on every Write call (each 32 KiB of
// io.Copy), so its bytes written grew with the square of the file size.
func TestWriteLinear(t *testing.T) {
	src := filepath.Join(t.TempDir(), "uki")
	const size = 16 << 20
	if err := os.WriteFile(src, bytes.Repeat([]byte("0123456789abcdef"), size/16), 0o644); err != nil {
		t.Fatal(err)
	}
	before := writtenBytes(t)
	if err := Write(context.Background(), filepath.Join(t.TempDir(), "d.img"), Options{Scheme: GPT, Files: []File{{Path: "EFI/Linux/linuxkit.efi", Src: src}}}); err != nil {
		t.Fatal(err)
	}
	written := writtenBytes(t) - before
	t.Logf("%d bytes written for a %d-byte file", written, size)
	if written > 2*size {
		t.Errorf("%d bytes written for a %d-byte file, want at most twice its size", written, size)
	}
}

// writtenBytes is the number of bytes this process has passed to write
// system calls (wchar in /proc/self/io).
func writtenBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skip("no /proc/self/io")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Skip("no wchar in /proc/self/io")
	return 0
}

// TestFATNames: long names and names that differ only in case.
func TestFATNames(t *testing.T) {
	files := []File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("a")},
		{Path: "loader/loader.conf", Data: []byte("b")},
		{Path: "loader/entries/a rather long name.conf", Data: []byte("c")},
		{Path: "loader/entries/a rather long name.conf2", Data: []byte("d")},
		{Path: "UPPER.TXT", Data: []byte("e")},
	}
	root, err := buildTree(files)
	if err != nil {
		t.Fatal(err)
	}
	shorts := map[string]bool{}
	var walk func(n *fatNode)
	walk = func(n *fatNode) {
		for _, c := range n.children {
			shorts[n.path()+"|"+string(c.short[:])] = c.lfn
			walk(c)
		}
	}
	walk(root)
	for k, lfn := range map[string]bool{
		"/|EFI        ":               false,
		"/|UPPER   TXT":               false,
		"/|LOADER     ":               true,
		"/loader|LOADER~1CON":         true,
		"/loader/entries|ARATHE~1CON": true,
		"/loader/entries|ARATHE~2CON": true,
		"/EFI/BOOT|BOOTX64 EFI":       false,
		"/loader|ENTRIES    ":         true,
		"/EFI|BOOT       ":            false,
	} {
		if got, ok := shorts[k]; !ok || got != lfn {
			t.Errorf("%q: present %v, long name %v; want long name %v (have %v)", k, ok, got, lfn, shorts)
		}
	}
	// An upper-case 8.3 name whose short name a long name took first
	// gets a long name too.
	root, err = buildTree([]File{{Path: "AB C"}, {Path: "ABC~1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range root.children {
		if c.name == "ABC~1" && (!c.lfn || string(c.short[:]) == "ABC~1      ") {
			t.Errorf("ABC~1: short name %q, long name %v", c.short, c.lfn)
		}
	}
	if _, err := buildTree([]File{{Path: "a/x"}, {Path: "A/y"}}); err != nil {
		t.Errorf("the same directory spelled twice: %v", err)
	}
	for _, bad := range [][]File{
		{{Path: "kernel"}, {Path: "KERNEL"}},
		{{Path: "a:b"}},
		{{Path: "trailing."}},
		{{Path: strings.Repeat("x", 256)}},
		{{Path: "f"}, {Path: "f/g"}},
	} {
		if _, err := buildTree(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	img := filepath.Join(t.TempDir(), "n.img")
	if err := Write(context.Background(), img, Options{Scheme: NoTable, FAT16: true, Files: files}); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("mtype"); err == nil {
		out, err := exec.Command("mtype", "-i", img, "::/loader/entries/a rather long name.conf2").CombinedOutput()
		if err != nil || string(out) != "d" {
			t.Errorf("mtype: %q, %v", out, err)
		}
	}
}

// BenchmarkFATWrite writes a GPT disk holding one file of 256 MiB, then
// one of 512 MiB (an EFI disk's unified kernel image): the time should
// double, not quadruple. Run with `make bench`.
func BenchmarkFATWrite(b *testing.B) {
	for _, size := range []int64{256 << 20, 512 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			dir := b.TempDir()
			src := filepath.Join(dir, "uki")
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
			f, err := os.Create(src)
			if err != nil {
				b.Fatal(err)
			}
			for n := int64(0); n < size; n += int64(len(chunk)) {
				f.Write(chunk)
			}
			f.Close()
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				img := filepath.Join(dir, "d.img")
				if err := Write(context.Background(), img, Options{Scheme: GPT, Files: []File{{Path: "EFI/Linux/linuxkit.efi", Src: src}}}); err != nil {
					b.Fatal(err)
				}
				os.Remove(img)
			}
		})
	}
}
