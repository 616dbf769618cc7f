// Package disk writes partitioned boot disks: an MBR or a GPT partition
// table with one FAT32 partition that holds the boot files, plus optional
// BIOS boot code in the MBR and the gap after it (GRUB's boot.img and
// core.img). It uses go-diskfs for the partition tables and writes the
// FAT filesystem itself (fat.go), in time linear in the data. Every identifier (disk and partition GUIDs, the MBR disk
// signature, the FAT volume serial) is derived from the contents, and
// timestamps come from Options.ModTime, so the same inputs give the same
// bytes. The disk file is sparse: unwritten space costs nothing.
package disk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/google/uuid"
	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// Scheme is a partition table kind.
type Scheme int

const (
	// MBR is a DOS partition table with one bootable FAT32 (LBA) partition.
	MBR Scheme = iota
	// GPT is a GUID partition table with one EFI System Partition.
	GPT
	// NoTable is a bare FAT32 filesystem image with no partition table,
	// e.g. the EFI boot image of an ISO.
	NoTable
)

// start is where the FAT32 filesystem begins under scheme s.
func (s Scheme) start() int64 {
	if s == NoTable {
		return 0
	}
	return partStart
}

// File is one file of the FAT partition.
type File struct {
	Path string // slash-separated path inside the filesystem, e.g. "EFI/BOOT/BOOTX64.EFI"
	Src  string // file on the host to copy; empty when Data is used
	Data []byte // contents, when Src is empty
}

// Options describe one disk.
type Options struct {
	Scheme Scheme
	Files  []File
	// Size is the whole disk in bytes; 0 makes it as small as the files
	// allow. The partition fills the disk.
	Size int64
	// BootCode is written at the start of the MBR (at most 440 bytes).
	BootCode []byte
	// PostMBR is written from sector 1 up to the partition (at most 1 MiB
	// less one sector), e.g. GRUB's core.img.
	PostMBR []byte
	// FAT16 makes the filesystem FAT16 instead of FAT32: at least 8 MiB
	// instead of 40 (FAT32 needs 65525 clusters), at most 2 GiB. For El
	// Torito EFI images; an ESP on a disk should stay FAT32.
	FAT16 bool
	// Label is the FAT volume label (up to 11 characters).
	Label string
	// ModTime stamps the filesystem entries (clamped to 1980, FAT's epoch).
	ModTime time.Time
}

const (
	sector    = 512
	mib       = 1 << 20
	partStart = mib         // first partition at LBA 2048, 1 MiB aligned
	gptTail   = mib         // room for the backup GPT after the partition
	headroom  = 2 * mib     // directories, FAT rounding and spare room
	minFAT32  = 40 * mib    // at 512-byte clusters, FAT32 needs 65525 clusters
	minFAT16  = 8 * mib     // at 1 KiB clusters, FAT16 needs 4085 clusters
	maxFAT16  = 2<<30 - mib // at 32 KiB clusters, 2 GiB would exceed FAT16's 65524 clusters
	maxDisk   = 2 << 40
)

// MinSize returns the smallest FAT32 disk that holds files under scheme.
func MinSize(s Scheme, files []File) (int64, error) {
	return Options{Scheme: s, Files: files}.minSize()
}

func (o Options) minSize() (int64, error) {
	var data int64
	unit := int64(4096) // FAT32 clusters up to 8 GiB
	if o.FAT16 {
		unit = 32 << 10 // FAT16 clusters up to 2 GiB
	}
	for _, f := range o.Files {
		n, err := f.size()
		if err != nil {
			return 0, err
		}
		data += (n + unit - 1) / unit * unit
	}
	floor := int64(minFAT32)
	if o.FAT16 {
		floor = minFAT16
	}
	part := max(roundMiB(data+data/64+headroom), floor)
	total := o.Scheme.start() + part
	if o.Scheme == GPT {
		total += gptTail
	}
	if o.FAT16 && part > maxFAT16 {
		return 0, fmt.Errorf("%d MiB of boot files: too much for FAT16 (2 GiB)", part/mib)
	}
	return total, nil
}

func roundMiB(n int64) int64 { return (n + mib - 1) / mib * mib }

func (f File) size() (int64, error) {
	if f.Src == "" {
		return int64(len(f.Data)), nil
	}
	in, err := fstree.OpenRegular(f.Src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f File) open() (io.ReadCloser, error) {
	if f.Src == "" {
		return io.NopCloser(strings.NewReader(string(f.Data))), nil
	}
	return fstree.OpenRegular(f.Src)
}

// seed hashes the layout and every file's path and contents: the source
// of all identifiers written to the disk.
func seed(o Options, size int64) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "lkbuild-disk\x00%d\x00%d\x00%q\x00", o.Scheme, size, o.Label)
	h.Write(o.BootCode)
	h.Write(o.PostMBR)
	for _, f := range o.Files {
		n, err := f.size()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", f.Path, n)
		r, err := f.open()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Src, err)
		}
	}
	return h.Sum(nil), nil
}

// id derives a stable value for purpose from the seed.
func id(seed []byte, purpose string) [32]byte {
	return sha256.Sum256(append(append([]byte{}, seed...), purpose...))
}

func guid(seed []byte, purpose string) string {
	b := id(seed, purpose)
	u, _ := uuid.FromBytes(b[:16])
	u[6] = u[6]&0x0f | 0x40 // version 4 layout, random-looking but fixed
	u[8] = u[8]&0x3f | 0x80
	return strings.ToUpper(u.String())
}

// Write creates the disk image at dst (replacing it). Cancelling ctx stops
// it at the next read of a file's contents.
func Write(ctx context.Context, dst string, o Options) error {
	if len(o.BootCode) > 440 {
		return fmt.Errorf("boot code is %d bytes, at most 440 fit in the MBR", len(o.BootCode))
	}
	if o.Scheme == NoTable && (len(o.BootCode) > 0 || len(o.PostMBR) > 0) {
		return errors.New("boot code needs a partition table")
	}
	if len(o.PostMBR) > partStart-sector {
		return fmt.Errorf("post-MBR boot code is %d bytes, at most %d fit before the partition", len(o.PostMBR), partStart-sector)
	}
	if err := checkPaths(o.Files); err != nil {
		return err
	}
	size, err := o.minSize()
	if err != nil {
		return err
	}
	if o.Size > 0 {
		if o.Size < size {
			return fmt.Errorf("size %d bytes is too small: the boot files need a disk of at least %d MiB", o.Size, (size+mib-1)/mib)
		}
		size = o.Size / sector * sector
	}
	if size > maxDisk {
		return fmt.Errorf("size %d bytes is too large: an MBR partition and FAT32 end at 2 TiB", size)
	}
	partEnd := size // exclusive, in bytes
	if o.Scheme == GPT {
		partEnd = (size - gptTail) / mib * mib
	}
	partSize := partEnd - o.Scheme.start()
	vol, err := newFATVolume(partSize, o.Scheme.start(), o)
	if err != nil {
		return fmt.Errorf("FAT partition: %w", err)
	}
	sd, err := seed(o, size)
	if err != nil {
		return err
	}

	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	if o.Scheme != NoTable {
		if err := writeTable(f, o.Scheme, sd, size, partSize); err != nil {
			return err
		}
	}
	if len(o.BootCode) > 0 {
		if _, err := f.WriteAt(o.BootCode, 0); err != nil {
			return err
		}
	}
	if len(o.PostMBR) > 0 {
		if _, err := f.WriteAt(o.PostMBR, sector); err != nil {
			return err
		}
	}
	serial := id(sd, "fat-serial")
	if err := vol.write(ctx, f, serial[:4]); err != nil {
		return fmt.Errorf("FAT partition: %w", err)
	}
	return f.Close()
}

func checkPaths(files []File) error {
	seen := map[string]bool{}
	for _, f := range files {
		p := path.Clean("/" + f.Path)
		if p == "/" || p != "/"+f.Path {
			return fmt.Errorf("file path %q: want a clean relative path", f.Path)
		}
		if seen[p] {
			return fmt.Errorf("file path %q given twice", f.Path)
		}
		seen[p] = true
	}
	return nil
}

func writeTable(f *os.File, s Scheme, sd []byte, size, partSize int64) error {
	b := file.New(f, false)
	w, err := b.Writable()
	if err != nil {
		return err
	}
	switch s {
	case MBR:
		t := &mbr.Table{
			LogicalSectorSize:  sector,
			PhysicalSectorSize: sector,
			Partitions: []*mbr.Partition{{
				Bootable: true,
				Type:     mbr.Fat32LBA,
				Start:    uint32(partStart / sector),
				Size:     uint32(partSize / sector),
			}},
		}
		if err := t.Write(w, size); err != nil {
			return err
		}
		sig := id(sd, "mbr-signature")
		_, err := f.WriteAt(append(sig[:4], 0, 0), 440)
		return err
	case GPT:
		t := &gpt.Table{
			LogicalSectorSize:  sector,
			PhysicalSectorSize: sector,
			ProtectiveMBR:      true,
			GUID:               guid(sd, "disk"),
			Partitions: []*gpt.Partition{{
				Index:      1,
				Start:      uint64(partStart / sector),
				End:        uint64((partStart+partSize)/sector - 1),
				Type:       gpt.EFISystemPartition,
				Name:       "EFI System",
				GUID:       guid(sd, "esp"),
				Attributes: 1 << 2, // legacy BIOS bootable, as LinuxKit sets it
			}},
		}
		return t.Write(w, size)
	}
	return fmt.Errorf("unknown partition scheme %d", s)
}

// PartitionOffset is where the FAT32 partition starts, in bytes.
const PartitionOffset = partStart
