package iso9660

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// rootRecord finds the record named name (its Rock Ridge NM) in the root
// directory of iso and returns its Rock Ridge entries, reading the
// continuation areas as Linux does (fs/isofs/rock.c): an area must lie
// within one sector, at most 32 are followed. It also returns how many
// continuation areas there were.
func rootRecord(t *testing.T, iso []byte, name string) (map[string][][]byte, int) {
	t.Helper()
	pvd := iso[16*SectorSize:]
	rootLBA := binary.LittleEndian.Uint32(pvd[156+2:])
	rootLen := binary.LittleEndian.Uint32(pvd[156+10:])
	dir := iso[rootLBA*SectorSize:][:rootLen]
	for off := 0; off < len(dir); {
		n := int(dir[off])
		if n == 0 {
			off = (off/SectorSize + 1) * SectorSize
			continue
		}
		rec := dir[off : off+n]
		off += n
		idLen := int(rec[32])
		su := rec[33+idLen+(1-idLen%2):]
		entries := map[string][][]byte{}
		areas := 0
		for {
			var ce []byte
			for len(su) >= 4 && su[2] >= 4 && int(su[2]) <= len(su) {
				e := su[:su[2]]
				su = su[su[2]:]
				sig := string(e[:2])
				if sig == "CE" {
					ce = e
					continue
				}
				entries[sig] = append(entries[sig], e)
			}
			if ce == nil {
				break
			}
			lba := binary.LittleEndian.Uint32(ce[4:])
			cOff := binary.LittleEndian.Uint32(ce[12:])
			cLen := binary.LittleEndian.Uint32(ce[20:])
			if cOff+cLen > SectorSize {
				t.Fatalf("a continuation area at offset %d of %d bytes crosses its sector (Linux: EIO)", cOff, cLen)
			}
			if areas++; areas >= 32 {
				t.Fatal("more than 31 continuation areas in one chain (Linux: EIO)")
			}
			su = iso[int64(lba)*SectorSize+int64(cOff):][:cLen]
		}
		var nm []byte
		for _, e := range entries["NM"] {
			nm = append(nm, e[5:]...)
		}
		if string(nm) == name {
			return entries, areas
		}
	}
	t.Fatalf("%s: not in the root directory", name)
	return nil, 0
}

// slTarget decodes SL entries into a symlink target.
func slTarget(sl [][]byte) string {
	var b strings.Builder
	sep := ""
	for _, e := range sl {
		body := e[5:]
		for len(body) >= 2 {
			flags, n := body[0], int(body[1])
			b.WriteString(sep)
			switch {
			case flags&0x08 != 0:
				b.WriteString("/")
				sep = ""
				body = body[2:]
				continue
			case flags&0x02 != 0:
				b.WriteString(".")
			case flags&0x04 != 0:
				b.WriteString("..")
			default:
				b.Write(body[2 : 2+n])
			}
			sep = "/"
			if flags&0x01 != 0 {
				sep = ""
			}
			body = body[2+n:]
		}
	}
	return b.String()
}

// TestLongSymlinks: symlink targets up to Linux's 4095 bytes come back
// whole, read as Linux's isofs reads them (every continuation area within
// its sector, chained with CE entries); 4096 bytes is refused. The writer put all Rock Ridge data of a
// record in one continuation area, which crossed a sector from about 2 KiB
// on: Linux read those entries with EIO.
func TestLongSymlinks(t *testing.T) {
	targets := map[string]string{
		"short":     "../lib/libc.so.6",
		"1023":      "/" + strings.Repeat("y", 1022),
		"2k":        "/" + strings.Repeat("abcdefgh/", 240),
		"max-comps": strings.Repeat("a/", 2047) + "b", // 4095 bytes, 2048 components
		"max-long":  "/" + strings.Repeat("x", 4094),
		"max-dots":  strings.Repeat("../", 1365),
	}
	files := []File{}
	for name, target := range targets {
		if len(target) > maxLinkTarget {
			t.Fatalf("%s: %d bytes", name, len(target))
		}
		files = append(files, File{Entry: fstree.Entry{Path: name, Mode: os.ModeSymlink | 0o777, Linkname: target}})
	}
	p := writeISO(t, files, Options{ModTime: time.Unix(1700000000, 0)})
	iso, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range targets {
		ents, areas := rootRecord(t, iso, name)
		want := strings.TrimSuffix(target, "/")
		if got := slTarget(ents["SL"]); got != want {
			t.Errorf("%s: SL reads back as %d bytes %.40q..., want %d bytes", name, len(got), got, len(want))
		}
		t.Logf("%s: %d bytes in %d continuation areas", name, len(target), areas)
	}
	// libisofs reads targets of at most 1023 bytes ("Rock Ridge path too
	// long" beyond): xorriso checks those.
	if _, err := exec.LookPath("osirrox"); err == nil {
		var short []File
		for _, f := range files {
			if len(f.Linkname) <= 1023 {
				short = append(short, f)
			}
		}
		out := filepath.Join(t.TempDir(), "x")
		if msg, err := exec.Command("osirrox", "-indev", writeISO(t, short, Options{}), "-extract", "/", out).CombinedOutput(); err != nil {
			t.Fatalf("osirrox: %v\n%s", err, msg)
		}
		for _, f := range short {
			name, target := f.Path, f.Linkname
			got, err := os.Readlink(filepath.Join(out, name))
			if err != nil || got != strings.TrimSuffix(target, "/") {
				t.Errorf("%s: osirrox extracts %d bytes (%v), want %d", name, len(got), err, len(target))
			}
		}
	}
	over := []File{{Entry: fstree.Entry{Path: "l", Mode: os.ModeSymlink | 0o777, Linkname: strings.Repeat("a/", 2048)}}}
	err = Write(&bytes.Buffer{}, over, Options{})
	if err == nil || !strings.Contains(err.Error(), "symlink target of 4096 bytes: at most 4095") {
		t.Errorf("4096-byte target: error %v", err)
	}
}

// TestNameDedupeLinear: 60,000 names with one ISO 9660 base in one
// directory get unique identifiers of at most 30 characters, in a time
// linear in their number. Each name tried every suffix from _1 up: the
// 60,000 took minutes.
func TestNameDedupeLinear(t *testing.T) {
	for _, ext := range []string{"", ".conf", ".12345678"} {
		n := 60000
		files := []File{{Entry: fstree.Entry{Path: "d", Mode: os.ModeDir | 0o755}}}
		for i := 0; i < n; i++ {
			files = append(files, File{Entry: fstree.Entry{Path: fmt.Sprintf("d/a-long-common-prefix-for-all-of-them-%05d%s", i, ext), Mode: 0o644}})
		}
		start := time.Now()
		img, err := layout(files, Options{})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("%d names ending %q laid out in %s", n, ext, took.Round(time.Millisecond))
		seen := map[string]bool{}
		for _, c := range img.byPath["d"].children {
			id := strings.TrimSuffix(c.isoName, ";1")
			if len(id) > 30 || seen[id] {
				t.Fatalf("identifier %q: too long or given twice", id)
			}
			seen[id] = true
		}
		if len(seen) != n {
			t.Fatalf("%d identifiers for %d names", len(seen), n)
		}
		if took > 20*time.Second {
			t.Errorf("%d names took %s", n, took)
		}
	}
}

// BenchmarkNameDedupe lays out one directory of 60,000 names that all map
// to the same ISO 9660 identifier, which then need a numbered suffix each.
// Run with `make bench`.
func BenchmarkNameDedupe(b *testing.B) {
	files := []File{{Entry: fstree.Entry{Path: "d", Mode: os.ModeDir | 0o755}}}
	for i := 0; i < 60000; i++ {
		files = append(files, File{Entry: fstree.Entry{Path: fmt.Sprintf("d/a-long-common-prefix-for-all-of-them-%05d", i), Mode: 0o644}})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := layout(files, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
