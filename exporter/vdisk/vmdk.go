package vdisk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// VMDKOptions are the identity and descriptor choices of a VMDK. The zero
// value is valid and reproducible.
type VMDKOptions struct {
	// Seed derives the descriptor's content IDs (CID and
	// ddb.longContentID), which VMware uses to tell disks and their
	// versions apart. Pass something that identifies the content, such as a
	// digest of the build inputs.
	Seed []byte
	// AdapterType is the descriptor's ddb.adapterType: "ide", "buslogic",
	// "lsilogic" (the default), "lsisas1068", "pvscsi" or "legacyESX". It
	// also selects the geometry recorded in the descriptor.
	AdapterType string
	// ExtentName is the file name the descriptor gives the extent; the
	// default is "disk.vmdk". Importers ignore it for stream-optimized disks,
	// but it appears in VMware's tooling.
	ExtentName string
}

const (
	vmdkGrainSize  = 64 << 10
	vmdkGrainSecs  = vmdkGrainSize / sectorSize
	vmdkGTEntries  = 512 // grain table entries: a table maps 32 MiB
	vmdkGTSecs     = vmdkGTEntries * 4 / sectorSize
	vmdkGDAtEnd    = ^uint64(0)
	vmdkMarkerEOS  = 0
	vmdkMarkerGT   = 1
	vmdkMarkerGD   = 2
	vmdkMarkerFoot = 3
	// Header flags: valid newline test, compressed grains, markers.
	vmdkFlags = 1 | 1<<16 | 1<<17
)

var vmdkAdapters = map[string]bool{
	"ide": true, "buslogic": true, "lsilogic": true, "lsisas1068": true, "pvscsi": true, "legacyESX": true,
}

// WriteVMDK writes the raw image of size bytes as a monolithic
// streamOptimized VMDK (version 3): the sparse extent header, the embedded
// descriptor, then for each non-zero 64 KiB grain a grain marker and its
// zlib/deflate-compressed data, a grain table after the grains of each 32 MiB
// that has any, the grain directory, the footer (the header again, now
// pointing at the directory) and the end-of-stream marker. All-zero grains
// are not written. The capacity is size rounded up to a multiple of 512
// bytes. raw is read once, sequentially; only the grain directory (4 bytes
// per 32 MiB) grows with the disk size.
func WriteVMDK(w io.Writer, raw io.ReaderAt, size int64, opt VMDKOptions) error {
	if err := checkSize(size); err != nil {
		return fmt.Errorf("vmdk: %w", err)
	}
	adapter := opt.AdapterType
	if adapter == "" {
		adapter = "lsilogic"
	}
	if !vmdkAdapters[adapter] {
		return fmt.Errorf("vmdk: unknown adapter type %q", opt.AdapterType)
	}
	name := opt.ExtentName
	if name == "" {
		name = "disk.vmdk"
	}
	if strings.ContainsAny(name, "\"\r\n\x00") {
		return fmt.Errorf("vmdk: extent name %q contains a quote or control character", name)
	}
	capacity := divUp(size, sectorSize)
	grains := divUp(capacity, vmdkGrainSecs)
	tables := divUp(grains, vmdkGTEntries)

	desc := vmdkDescriptor(capacity, adapter, name, opt.Seed)
	descSecs := divUp(int64(len(desc)), sectorSize)
	// Header and descriptor fill the first grain-aligned stretch, as
	// VMware's own stream-optimized disks do.
	overhead := roundUp(1+descSecs, vmdkGrainSecs)

	o := newOutput(w)
	o.write(vmdkHeader(capacity, descSecs, overhead, vmdkGDAtEnd))
	o.write(desc)
	o.pad(sectorSize)
	o.zeroFill(overhead*sectorSize - o.off)

	gd := make([]uint32, tables)
	gt := make([]uint32, vmdkGTEntries)
	gtBytes := make([]byte, vmdkGTSecs*sectorSize)
	used := false // gt has an entry
	buf := make([]byte, vmdkGrainSize)
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.DefaultCompression)
	if err != nil {
		return fmt.Errorf("vmdk: %w", err)
	}
	sector := func() (uint32, error) {
		s := o.off / sectorSize
		if s > 1<<32-1 {
			return 0, fmt.Errorf("vmdk: output exceeds 2 TiB, beyond the format's 32-bit sector offsets")
		}
		return uint32(s), nil
	}
	marker := make([]byte, sectorSize)
	metaMarker := func(secs int64, typ uint32) {
		clear(marker)
		binary.LittleEndian.PutUint64(marker[0:], uint64(secs))
		binary.LittleEndian.PutUint32(marker[12:], typ)
		o.write(marker)
	}

	for g := int64(0); g < grains && o.err == nil; g++ {
		if err := readChunk(raw, size, buf, g*vmdkGrainSize); err != nil {
			return fmt.Errorf("vmdk: %w", err)
		}
		if !isZero(buf) {
			s, err := sector()
			if err != nil {
				return err
			}
			z.Reset()
			zw.Reset(&z)
			if _, err := zw.Write(buf); err != nil {
				return fmt.Errorf("vmdk: compressing grain %d: %w", g, err)
			}
			if err := zw.Close(); err != nil {
				return fmt.Errorf("vmdk: compressing grain %d: %w", g, err)
			}
			var m [12]byte
			binary.LittleEndian.PutUint64(m[0:], uint64(g*vmdkGrainSecs))
			binary.LittleEndian.PutUint32(m[8:], uint32(z.Len()))
			o.write(m[:])
			o.write(z.Bytes())
			o.pad(sectorSize)
			gt[g%vmdkGTEntries] = s
			used = true
		}
		if (g+1)%vmdkGTEntries == 0 || g+1 == grains {
			if used {
				metaMarker(vmdkGTSecs, vmdkMarkerGT)
				s, err := sector()
				if err != nil {
					return err
				}
				gd[g/vmdkGTEntries] = s
				for i, e := range gt {
					binary.LittleEndian.PutUint32(gtBytes[i*4:], e)
				}
				o.write(gtBytes)
				clear(gt)
				used = false
			}
		}
	}

	// Grain directory.
	gdSecs := divUp(tables*4, sectorSize)
	metaMarker(gdSecs, vmdkMarkerGD)
	gdOff, err := sector()
	if err != nil {
		return err
	}
	gdBytes := make([]byte, gdSecs*sectorSize)
	for i, e := range gd {
		binary.LittleEndian.PutUint32(gdBytes[i*4:], e)
	}
	o.write(gdBytes)

	// Footer and end of stream.
	metaMarker(1, vmdkMarkerFoot)
	o.write(vmdkHeader(capacity, descSecs, overhead, uint64(gdOff)))
	metaMarker(0, vmdkMarkerEOS)
	if err := o.flush(); err != nil {
		return fmt.Errorf("vmdk: %w", err)
	}
	return nil
}

// vmdkHeader is the 512-byte sparse extent header (and the footer).
func vmdkHeader(capacity, descSecs, overhead int64, gdOffset uint64) []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x564d444b) // "KDMV"
	le.PutUint32(b[4:], 3)
	le.PutUint32(b[8:], vmdkFlags)
	le.PutUint64(b[12:], uint64(capacity))
	le.PutUint64(b[20:], vmdkGrainSecs)
	le.PutUint64(b[28:], 1) // descriptor offset, sectors
	le.PutUint64(b[36:], uint64(descSecs))
	le.PutUint32(b[44:], vmdkGTEntries)
	le.PutUint64(b[48:], 0) // no redundant grain directory
	le.PutUint64(b[56:], gdOffset)
	le.PutUint64(b[64:], uint64(overhead))
	b[72] = 0 // clean shutdown
	b[73] = '\n'
	b[74] = ' '
	b[75] = '\r'
	b[76] = '\n'
	le.PutUint16(b[77:], 1) // deflate
	return b
}

// vmdkDescriptor is the embedded text descriptor of a monolithic
// stream-optimized disk.
func vmdkDescriptor(capacity int64, adapter, name string, seed []byte) []byte {
	cid := deriveID(seed, "vmdk cid")
	long := deriveID(seed, "vmdk long content id")
	heads, secs, maxCyl := int64(255), int64(63), int64(65535)
	if adapter == "ide" {
		heads, maxCyl = 16, 16383
	}
	cyl := min(capacity/(heads*secs), maxCyl)
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\n")
	fmt.Fprintf(&b, "version=1\n")
	fmt.Fprintf(&b, "encoding=\"UTF-8\"\n")
	fmt.Fprintf(&b, "CID=%s\n", hex.EncodeToString(cid[:4]))
	fmt.Fprintf(&b, "parentCID=ffffffff\n")
	fmt.Fprintf(&b, "createType=\"streamOptimized\"\n\n")
	fmt.Fprintf(&b, "# Extent description\n")
	fmt.Fprintf(&b, "RW %d SPARSE \"%s\"\n\n", capacity, name)
	fmt.Fprintf(&b, "# The Disk Data Base\n#DDB\n\n")
	fmt.Fprintf(&b, "ddb.adapterType = \"%s\"\n", adapter)
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\n", cyl)
	fmt.Fprintf(&b, "ddb.geometry.heads = \"%d\"\n", heads)
	fmt.Fprintf(&b, "ddb.geometry.sectors = \"%d\"\n", secs)
	fmt.Fprintf(&b, "ddb.longContentID = \"%s\"\n", hex.EncodeToString(long[:]))
	fmt.Fprintf(&b, "ddb.virtualHWVersion = \"4\"\n")
	return []byte(b.String())
}
