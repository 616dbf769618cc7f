package disk

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	if err := Write(img, Options{Scheme: GPT, Files: files, ModTime: epoch}); err != nil {
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
	if err := Write(img, Options{Scheme: MBR, Files: files, BootCode: boot, PostMBR: core, Size: size}); err != nil {
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
		if err := Write(p, Options{Scheme: GPT, Files: fl, ModTime: time.Unix(1700000000, 0)}); err != nil {
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
		err := Write(filepath.Join(dir, "d.img"), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestWriteNoTable(t *testing.T) {
	img := filepath.Join(t.TempDir(), "efiboot.img")
	files := []File{{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("MZ uki")}}
	if err := Write(img, Options{Scheme: NoTable, Files: files}); err != nil {
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
	if err := Write(img, Options{Scheme: NoTable, BootCode: []byte{1}}); err == nil {
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
	if err := Write(img, Options{Scheme: NoTable, FAT16: true, Files: files, ModTime: time.Unix(1700000000, 0)}); err != nil {
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
