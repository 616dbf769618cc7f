package vdisk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"
)

const mib = 1 << 20

// region is a non-zero stretch of a synthetic raw image.
type region struct{ off, n int64 }

// synthImage is a raw image described by its non-zero regions, generated on
// the fly so that tests can use large disks without holding them in memory.
// Bytes in a region are a function of their offset and never zero.
type synthImage struct {
	size    int64
	regions []region
}

func patternByte(off int64) byte {
	v := byte(off*131 + off>>9*7 + off>>17)
	if v == 0 {
		v = 0x5a
	}
	return v
}

func (s *synthImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if int64(n) > s.size-off {
		n = int(s.size - off)
		err = io.EOF
	}
	p = p[:n]
	clear(p)
	for _, r := range s.regions {
		lo, hi := max(r.off, off), min(r.off+r.n, off+int64(n))
		for i := lo; i < hi; i++ {
			p[i-off] = patternByte(i)
		}
	}
	return n, err
}

// bytes materializes a (small) image.
func (s *synthImage) bytes() []byte {
	b := make([]byte, s.size)
	if _, err := s.ReadAt(b, 0); err != nil && err != io.EOF {
		panic(err)
	}
	return b
}

// smallImage is a few MiB with data at the start (a partition table), data
// straddling cluster and block boundaries, a region inside one cluster, long
// zero stretches and data in the last, partial cluster.
func smallImage() *synthImage {
	size := int64(5*mib + 3*512)
	return &synthImage{size: size, regions: []region{
		{0, 4096},
		{1*mib + 100, 70000},
		{2*mib - 10, 20},
		{3*mib + 64<<10 + 5, 1},
		{size - 10, 10},
	}}
}

// oddImage has a size that is not a whole number of sectors.
func oddImage() *synthImage {
	size := int64(3*mib + 100)
	return &synthImage{size: size, regions: []region{{512, 1000}, {size - 50, 50}}}
}

// largeImage is sparse and crosses a VMDK grain table (32 MiB) and a qcow2
// L2 table (512 MiB) boundary.
func largeImage() *synthImage {
	size := int64(1100 * mib)
	return &synthImage{size: size, regions: []region{
		{0, 1 << 20},
		{32*mib - 100, 200},
		{512*mib - 1000, 5000},
		{700 * mib, 3 * mib},
		{size - 4096, 4096},
	}}
}

// vimage is a parsed virtual disk: its virtual size and, per allocation
// unit, the stored data (nil when the unit is not allocated).
type vimage struct {
	size  int64
	unit  int64
	units map[int64][]byte
	// sparse says that only non-zero units may be allocated.
	sparse bool
}

// verify checks that v holds exactly the data of raw (zero beyond raw's
// size), that it is at least rawSize large, and, for sparse formats, that
// exactly the non-zero units are allocated.
func verify(t *testing.T, v *vimage, raw io.ReaderAt, rawSize, wantSize int64) {
	t.Helper()
	if v.size != wantSize {
		t.Fatalf("virtual size %d, want %d", v.size, wantSize)
	}
	buf := make([]byte, v.unit)
	allocated, nonZero := 0, 0
	for u := int64(0); u*v.unit < v.size; u++ {
		if err := readChunk(raw, rawSize, buf, u*v.unit); err != nil {
			t.Fatal(err)
		}
		if !isZero(buf) {
			nonZero++
		}
		got, ok := v.units[u]
		if !ok {
			if !isZero(buf) {
				t.Fatalf("unit %d (offset %d) holds data but is not allocated", u, u*v.unit)
			}
			continue
		}
		allocated++
		if v.sparse && isZero(buf) {
			t.Errorf("all-zero unit %d (offset %d) is allocated", u, u*v.unit)
		}
		// A last, partial unit may be stored in full, zero-padded.
		n := min(v.unit, v.size-u*v.unit)
		if int64(len(got)) < n || !bytes.Equal(got[:n], buf[:n]) || !isZero(got[n:]) {
			t.Fatalf("unit %d (offset %d) differs from the raw image", u, u*v.unit)
		}
	}
	for u := range v.units {
		if u*v.unit >= v.size {
			t.Errorf("unit %d is allocated beyond the virtual size", u)
		}
	}
	if v.sparse && allocated != nonZero {
		t.Errorf("%d units allocated, %d non-zero", allocated, nonZero)
	}
	t.Logf("virtual size %d, %d of %d units allocated", v.size, allocated, divUp(v.size, v.unit))
}

// format is one converter under test, with its parser.
type format struct {
	name     string
	qemu     string // qemu-img -f name
	write    func(w io.Writer, raw io.ReaderAt, size int64) error
	parse    func(b []byte) (*vimage, error)
	virtSize func(size int64) int64
	sparse   bool // the output stays small for sparse images
}

var (
	testSeed = sha256.Sum256([]byte("test image"))
	testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
)

func sectorRounded(size int64) int64 { return roundUp(size, sectorSize) }

var formats = []format{
	{
		name: "qcow2", qemu: "qcow2", sparse: true,
		write:    WriteQCOW2,
		parse:    parseQCOW2,
		virtSize: sectorRounded,
	},
	{
		name: "vhd-fixed", qemu: "vpc",
		write: func(w io.Writer, raw io.ReaderAt, size int64) error {
			return WriteVHD(w, raw, size, VHDOptions{Seed: testSeed[:], Time: testTime})
		},
		parse:    func(b []byte) (*vimage, error) { return parseVHD(b, testTime) },
		virtSize: func(size int64) int64 { return VHDSize(size, false) },
	},
	{
		name: "vhd-dynamic", qemu: "vpc", sparse: true,
		write: func(w io.Writer, raw io.ReaderAt, size int64) error {
			return WriteDynamicVHD(w, raw, size, VHDOptions{Seed: testSeed[:], Time: testTime})
		},
		parse:    func(b []byte) (*vimage, error) { return parseVHD(b, testTime) },
		virtSize: func(size int64) int64 { return VHDSize(size, false) },
	},
	{
		name: "vhd-dynamic-mib", qemu: "vpc", sparse: true,
		write: func(w io.Writer, raw io.ReaderAt, size int64) error {
			return WriteDynamicVHD(w, raw, size, VHDOptions{Seed: testSeed[:], Time: testTime, AlignMiB: true})
		},
		parse:    func(b []byte) (*vimage, error) { return parseVHD(b, testTime) },
		virtSize: func(size int64) int64 { return VHDSize(size, true) },
	},
	{
		name: "vmdk", qemu: "vmdk", sparse: true,
		write: func(w io.Writer, raw io.ReaderAt, size int64) error {
			return WriteVMDK(w, raw, size, VMDKOptions{Seed: testSeed[:]})
		},
		parse:    parseVMDK,
		virtSize: sectorRounded,
	},
}

// forEachCase runs fn as a subtest for every format and test image (the
// large one only outside -short, and only for the sparse formats).
func forEachCase(t *testing.T, fn func(t *testing.T, f format, img *synthImage)) {
	images := map[string]*synthImage{"small": smallImage(), "odd": oddImage()}
	if !testing.Short() {
		images["large"] = largeImage()
	}
	for _, f := range formats {
		for name, img := range images {
			if name == "large" && !f.sparse {
				continue
			}
			t.Run(f.name+"/"+name, func(t *testing.T) { fn(t, f, img) })
		}
	}
}

func TestRoundTrip(t *testing.T) {
	forEachCase(t, func(t *testing.T, f format, img *synthImage) {
		var out bytes.Buffer
		if err := f.write(&out, img, img.size); err != nil {
			t.Fatal(err)
		}
		v, err := f.parse(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		verify(t, v, img, img.size, f.virtSize(img.size))
		t.Logf("%d bytes", out.Len())
	})
}

func TestDeterministic(t *testing.T) {
	img := smallImage()
	raw := bytes.NewReader(img.bytes())
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			var a, b bytes.Buffer
			if err := f.write(&a, raw, img.size); err != nil {
				t.Fatal(err)
			}
			if err := f.write(&b, raw, img.size); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("two writes of the same image differ")
			}
		})
	}
}

func TestSeedChangesIdentity(t *testing.T) {
	img := smallImage()
	write := func(seed string) ([]byte, []byte) {
		var v, k bytes.Buffer
		if err := WriteDynamicVHD(&v, img, img.size, VHDOptions{Seed: []byte(seed)}); err != nil {
			t.Fatal(err)
		}
		if err := WriteVMDK(&k, img, img.size, VMDKOptions{Seed: []byte(seed)}); err != nil {
			t.Fatal(err)
		}
		return v.Bytes(), k.Bytes()
	}
	v1, k1 := write("a")
	v2, k2 := write("b")
	if bytes.Equal(v1[68:84], v2[68:84]) {
		t.Error("VHD unique id does not depend on the seed")
	}
	if bytes.Equal(k1, k2) {
		t.Error("VMDK does not depend on the seed")
	}
}

func TestVHDSize(t *testing.T) {
	for _, size := range []int64{1, 512, 3*mib + 100, 5*mib + 1536, 100 * mib, 1 << 30, 40 << 30, 127 << 30, 200 << 30} {
		for _, align := range []bool{false, true} {
			got := VHDSize(size, align)
			sectors, c, h, s := vhdGeometry(size, align)
			if got < size || got != sectors*sectorSize {
				t.Errorf("VHDSize(%d, %v) = %d", size, align, got)
			}
			if align && got%mib != 0 {
				t.Errorf("VHDSize(%d, true) = %d, not MiB-aligned", size, got)
			}
			if sectors <= vhdMaxCHSSectors {
				if int64(c)*int64(h)*int64(s) != sectors {
					t.Errorf("size %d: CHS %d/%d/%d does not describe %d sectors", size, c, h, s, sectors)
				}
				if got-size > 256*mib {
					t.Errorf("size %d rounded up too far, to %d", size, got)
				}
			} else if c != 65535 || h != 16 || s != 255 {
				t.Errorf("size %d: CHS %d/%d/%d, want the maximum", size, c, h, s)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	img := smallImage()
	if err := WriteQCOW2(io.Discard, img, 0); err == nil {
		t.Error("empty image accepted")
	}
	if err := WriteVMDK(io.Discard, img, img.size, VMDKOptions{AdapterType: "scsi\"x"}); err == nil {
		t.Error("bad adapter type accepted")
	}
	// A raw image shorter than the size given.
	short := bytes.NewReader(img.bytes()[:mib])
	for _, f := range formats {
		if err := f.write(io.Discard, short, img.size); err == nil {
			t.Errorf("%s: short raw image accepted", f.name)
		}
	}
	if err := WriteVHD(io.Discard, img, 3<<40, VHDOptions{}); err == nil {
		t.Error("VHD over 2 TiB accepted")
	}
	// Write errors are reported.
	for _, f := range formats {
		if err := f.write(failWriter{}, img, img.size); err == nil {
			t.Errorf("%s: write error not reported", f.name)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

// TestStreaming converts a large, mostly empty image and checks that the
// memory allocated stays far below the disk size.
func TestStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 8 GiB per format; skipped in -short mode")
	}
	img := &synthImage{size: 8 << 30, regions: []region{{0, mib}, {4 << 30, 3 * mib}, {8<<30 - mib, mib}}}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var n countWriter
			if err := f.write(&n, img, img.size); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("output %d bytes, allocated %d bytes", n, alloc)
			if alloc > 16*mib {
				t.Errorf("allocated %d bytes for an 8 GiB disk", alloc)
			}
		})
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
