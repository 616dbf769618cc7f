package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is what sort of bootable artifact a file is.
type Kind int

// The kinds of artifact lkbuild writes that qemu can boot.
const (
	// KernelInitrd is <name>-kernel, <name>-initrd.img and <name>-cmdline
	// (kernel+initrd), booted with -kernel/-initrd/-append.
	KernelInitrd Kind = iota + 1
	// ISO is an ISO 9660 image with El Torito boot entries (iso-bios,
	// iso-efi, iso-efi-initrd), attached as a CD.
	ISO
	// Disk is a disk image (raw, qcow2, vhd, vmdk), attached as a virtio
	// disk.
	Disk
	// UKI is a unified kernel image (a PE file with a .linux section),
	// started by the firmware from a FAT directory as the removable-media
	// boot loader.
	UKI
)

func (k Kind) String() string {
	switch k {
	case KernelInitrd:
		return "kernel+initrd"
	case ISO:
		return "ISO"
	case Disk:
		return "disk"
	case UKI:
		return "unified kernel image"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Firmware is what a machine boots with.
type Firmware int

const (
	// BIOS is qemu's default SeaBIOS (amd64 only).
	BIOS Firmware = iota
	// EFI is OVMF (amd64, Debian's ovmf) or AAVMF (arm64,
	// qemu-efi-aarch64).
	EFI
)

func (f Firmware) String() string {
	if f == EFI {
		return "EFI"
	}
	return "BIOS"
}

// Artifact is a bootable artifact found by Detect.
type Artifact struct {
	Kind Kind
	// Path is the ISO, disk or UKI file; for KernelInitrd, the kernel.
	Path string
	// Initrd and Cmdline (its contents, trimmed) complete KernelInitrd;
	// Cmdline is empty when there is no <name>-cmdline.
	Initrd, Cmdline string
	// Format is qemu's driver for a Disk: raw, qcow2, vpc or vmdk.
	Format string
	// Firmware is what the artifact boots with: EFI for UKIs and for
	// ISOs and disks that have only EFI boot code (see Detect).
	Firmware Firmware
	// Arch is the architecture the kernel or UKI was built for (amd64,
	// arm64), or "" when the artifact does not say (ISOs, disks).
	Arch string
}

// Detect finds out what path is. A directory must hold one kernel+initrd
// (<name>-kernel with <name>-initrd.img); any other path that does not
// exist is tried as the <name> prefix of one (out/minimal for
// out/minimal-kernel). A file is recognised by its contents: a PE file
// with a .linux section is a UKI, the ISO 9660 signature at byte 32769 an
// ISO, the qcow2, VHD and VMDK magic numbers and an MBR or GPT a disk, and
// a Linux kernel (bzImage, arm64 Image) the kernel of a kernel+initrd. The
// name (lkbuild's suffixes, see docs/formats.md) is used only where the
// contents leave it open: the firmware of a qcow2 disk whose first
// cluster cannot be read.
func Detect(path string) (Artifact, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return kernelInitrd(path)
	case err != nil:
		return Artifact{}, err
	case st.IsDir():
		return detectDir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	if a, ok := detectPE(f, path); ok {
		return a, nil
	}
	head := make([]byte, 64<<10)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Artifact{}, fmt.Errorf("reading %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case len(head) >= 32774 && string(head[32769:32774]) == "CD001":
		return Artifact{Kind: ISO, Path: path, Firmware: isoFirmware(f, head)}, nil
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		fw, ok := qcow2Firmware(f, head)
		if !ok {
			fw = firmwareFromName(path)
		}
		return Artifact{Kind: Disk, Path: path, Format: "qcow2", Firmware: fw}, nil
	case bytes.HasPrefix(head, []byte("conectix")):
		// A dynamic VHD; lkbuild writes VHDs only with BIOS boot code.
		return Artifact{Kind: Disk, Path: path, Format: "vpc", Firmware: BIOS}, nil
	case bytes.HasPrefix(head, []byte("KDMV")) || bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return Artifact{Kind: Disk, Path: path, Format: "vmdk", Firmware: BIOS}, nil
	}
	if arch := kernelArch(head); arch != "" {
		if !strings.HasSuffix(path, "-kernel") {
			return Artifact{}, fmt.Errorf("%s is a Linux kernel but not named <name>-kernel: cannot find its initrd (give the <name> prefix or the directory)", path)
		}
		return kernelInitrd(strings.TrimSuffix(path, "-kernel"))
	}
	if fw, ok := partitionFirmware(head); ok {
		format := "raw"
		if vhdFooter(f, st.Size()) {
			format = "vpc"
		}
		return Artifact{Kind: Disk, Path: path, Format: format, Firmware: fw}, nil
	}
	return Artifact{}, fmt.Errorf("%s: not a bootable artifact lkbuild writes (kernel+initrd, ISO, disk image, unified kernel image)", path)
}

// detectDir finds the one kernel+initrd in dir.
func detectDir(dir string) (Artifact, error) {
	kernels, err := filepath.Glob(filepath.Join(dir, "*-kernel"))
	if err != nil {
		return Artifact{}, err
	}
	var prefixes []string
	for _, k := range kernels {
		p := strings.TrimSuffix(k, "-kernel")
		if _, err := os.Stat(p + "-initrd.img"); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	sort.Strings(prefixes)
	switch len(prefixes) {
	case 0:
		return Artifact{}, fmt.Errorf("%s holds no <name>-kernel with <name>-initrd.img (give the file of another format, e.g. %s)", dir, filepath.Join(dir, "<name>.iso"))
	case 1:
		return kernelInitrd(prefixes[0])
	}
	return Artifact{}, fmt.Errorf("%s holds several kernel+initrd (%s): give the one to boot as %s", dir,
		strings.Join(prefixes, ", "), filepath.Join(dir, "<name>"))
}

// kernelInitrd returns the kernel+initrd with prefix p.
func kernelInitrd(p string) (Artifact, error) {
	a := Artifact{Kind: KernelInitrd, Path: p + "-kernel", Initrd: p + "-initrd.img"}
	for _, f := range []string{a.Path, a.Initrd} {
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Artifact{}, fmt.Errorf("%s does not exist, nor %s (kernel+initrd)", p, f)
			}
			return Artifact{}, err
		}
	}
	b, err := os.ReadFile(p + "-cmdline")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, err
	}
	a.Cmdline = strings.TrimSpace(string(b))
	head := make([]byte, 4096)
	f, err := os.Open(a.Path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	n, _ := io.ReadFull(f, head)
	a.Arch = kernelArch(head[:n])
	if a.Arch == "" {
		return Artifact{}, fmt.Errorf("%s is not a Linux kernel lkbuild can boot (bzImage or arm64 Image)", a.Path)
	}
	return a, nil
}

// detectPE recognises a UKI: a PE image with a .linux section. It reads
// the section table itself: systemd's stub points to a symbol table that
// is not in the file, which debug/pe rejects.
func detectPE(f *os.File, path string) (Artifact, bool) {
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	b = b[:n]
	if len(b) < 0x40 || string(b[:2]) != "MZ" {
		return Artifact{}, false
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if off < 0x40 || off+24 > len(b) || string(b[off:off+4]) != "PE\x00\x00" {
		return Artifact{}, false
	}
	coff := b[off+4:]
	machine := binary.LittleEndian.Uint16(coff[0:])
	nsect := int(binary.LittleEndian.Uint16(coff[2:]))
	sect := off + 24 + int(binary.LittleEndian.Uint16(coff[16:]))
	for i := 0; i < nsect && sect+40*(i+1) <= len(b); i++ {
		name := string(bytes.TrimRight(b[sect+40*i:sect+40*i+8], "\x00"))
		if name == ".linux" {
			return Artifact{Kind: UKI, Path: path, Firmware: EFI, Arch: peArch(machine)}, true
		}
	}
	return Artifact{}, false
}

func peArch(m uint16) string {
	switch m {
	case 0x8664:
		return "amd64"
	case 0xaa64:
		return "arm64"
	}
	return ""
}

// kernelArch reads a Linux kernel's header: x86's boot protocol ("HdrS"
// at 0x202) or arm64's Image header ("ARM\x64" at 0x38).
func kernelArch(head []byte) string {
	switch {
	case len(head) >= 0x206 && string(head[0x202:0x206]) == "HdrS":
		return "amd64"
	case len(head) >= 0x3c && string(head[0x38:0x3c]) == "ARM\x64":
		return "arm64"
	}
	return ""
}

// partitionFirmware reads an MBR: a GPT (a protective partition of type
// 0xEE) boots with EFI, an MBR with partitions with BIOS.
func partitionFirmware(head []byte) (Firmware, bool) {
	if len(head) < 1024 || head[510] != 0x55 || head[511] != 0xaa {
		return 0, false
	}
	found := false
	for i := 0; i < 4; i++ {
		e := head[446+16*i:]
		switch e[4] {
		case 0:
		case 0xee:
			if string(head[512:520]) == "EFI PART" {
				return EFI, true
			}
		default:
			found = true
		}
	}
	return BIOS, found
}

// vhdFooter reports whether the file ends in a fixed VHD's footer.
func vhdFooter(f *os.File, size int64) bool {
	if size < 512 {
		return false
	}
	b := make([]byte, 8)
	_, err := f.ReadAt(b, size-512)
	return err == nil && string(b) == "conectix"
}

// isoFirmware reads the El Torito boot catalog: an ISO with an x86 (BIOS)
// entry boots with BIOS, one with only EFI entries with EFI.
func isoFirmware(f *os.File, head []byte) Firmware {
	const sector = 2048
	brvd := make([]byte, sector)
	if _, err := f.ReadAt(brvd, 17*sector); err != nil || brvd[0] != 0 || string(brvd[1:6]) != "CD001" ||
		!bytes.HasPrefix(brvd[7:], []byte("EL TORITO SPECIFICATION")) {
		return BIOS
	}
	cat := make([]byte, sector)
	if _, err := f.ReadAt(cat, int64(binary.LittleEndian.Uint32(brvd[0x47:]))*sector); err != nil || cat[0] != 1 {
		return BIOS
	}
	// The validation entry names the default entry's platform; section
	// headers (0x90, 0x91 for the last) name theirs.
	bios := cat[1] == 0 && cat[32] == 0x88
	for off := 64; off+32 <= len(cat); off += 32 {
		if cat[off] != 0x90 && cat[off] != 0x91 {
			continue
		}
		if cat[off+1] == 0 {
			bios = true
		}
		if cat[off] == 0x91 {
			break
		}
	}
	if bios {
		return BIOS
	}
	return EFI
}

// qcow2Firmware reads the partition table from the first guest cluster of
// a qcow2 image (uncompressed, as lkbuild writes it).
func qcow2Firmware(f *os.File, head []byte) (Firmware, bool) {
	if len(head) < 48 {
		return 0, false
	}
	const offMask = 0x00fffffffffffe00
	bits := binary.BigEndian.Uint32(head[20:])
	l1 := binary.BigEndian.Uint64(head[40:])
	if bits < 10 || bits > 21 {
		return 0, false
	}
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, int64(l1)); err != nil {
		return 0, false
	}
	l2 := binary.BigEndian.Uint64(b) & offMask
	if l2 == 0 {
		return 0, false
	}
	if _, err := f.ReadAt(b, int64(l2)); err != nil {
		return 0, false
	}
	e := binary.BigEndian.Uint64(b)
	if e&(1<<62) != 0 || e&offMask == 0 {
		return 0, false
	}
	c := make([]byte, 1024)
	if _, err := f.ReadAt(c, int64(e&offMask)); err != nil {
		return 0, false
	}
	return partitionFirmware(c)
}

// firmwareFromName reads lkbuild's suffixes: -efi.<ext> is EFI.
func firmwareFromName(path string) Firmware {
	if strings.HasSuffix(strings.TrimSuffix(path, filepath.Ext(path)), "-efi") {
		return EFI
	}
	return BIOS
}
