package mkimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/lkbuild/lkbuild/exporter/disk"
	"github.com/lkbuild/lkbuild/exporter/uki"
	"github.com/lkbuild/lkbuild/exporter/vdisk"
	"github.com/lkbuild/lkbuild/formats"
)

// DefaultBootFiles is where the frontend image keeps the bootloader files
// (hack/bootfiles.sh), one directory per architecture.
const DefaultBootFiles = "/share/lkbuild/boot"

// bootInputs are the pieces every bootable format starts from: the kernel,
// an initrd (microcode first, then the gzip cpio of the tree without
// boot/), and the command line.
type bootInputs struct {
	kernel  *found
	initrd  string
	cmdline string
	cleanup func()
}

// prepareBoot writes the initrd to a hidden temporary file in the output
// directory; cleanup removes it.
func prepareBoot(ctx context.Context, o Options) (*bootInputs, error) {
	kernel, cmdline, err := bootCmdline(o)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(o.Output, ".initrd-")
	if err != nil {
		return nil, err
	}
	b := &bootInputs{kernel: kernel, initrd: tmp.Name(), cmdline: cmdline,
		cleanup: func() { os.Remove(tmp.Name()) }}
	w := ctxFile{ctx, tmp}
	err = o.appendBoot(w, UCodeFile)
	if err == nil {
		err = o.writeInitrd(w)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.cleanup()
		return nil, err
	}
	return b, nil
}

// bootCmdline locates the kernel, which a bootable format requires, and
// reads boot/cmdline (trimmed; empty when absent).
func bootCmdline(o Options) (*found, string, error) {
	kernel, err := o.kernel()
	if err != nil {
		return nil, "", err
	}
	cmdline, err := o.readBoot(CmdlineFile)
	if err != nil {
		return nil, "", err
	}
	return kernel, strings.TrimSpace(string(cmdline)), nil
}

// bootFile is the path of one of the frontend image's bootloader files for
// o's architecture.
func bootFile(o Options, name string) (string, error) {
	dir := o.BootFiles
	if dir == "" {
		dir = DefaultBootFiles
	}
	p := filepath.Join(dir, o.arch(), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("bootloader file %s for %s missing (the frontend image carries them in %s): %w", name, o.arch(), dir, err)
	}
	return p, nil
}

func (o Options) arch() string {
	if o.Arch == "" {
		return "amd64"
	}
	return o.Arch
}

// efiBootName is the removable-media boot path's file name for the
// architecture, as UEFI defines it.
func efiBootName(arch string) (string, error) {
	switch arch {
	case "amd64":
		return "BOOTX64.EFI", nil
	case "arm64":
		return "BOOTAA64.EFI", nil
	case "riscv64":
		return "BOOTRISCV64.EFI", nil
	}
	return "", fmt.Errorf("no EFI boot for architecture %s", arch)
}

func epochOrZero(o Options) time.Time {
	if o.Epoch != nil {
		return *o.Epoch
	}
	return time.Unix(0, 0)
}

// writeUKIFile writes the unified kernel image of b to dst (with no
// .initrd section when b has no initrd).
func writeUKIFile(ctx context.Context, o Options, b *bootInputs, dst string) error {
	stubPath, err := bootFile(o, "linux.efi.stub")
	if err != nil {
		return err
	}
	stub, err := os.ReadFile(stubPath)
	if err != nil {
		return err
	}
	kernel, cleanup, err := peKernel(ctx, b.kernel, dst)
	if err != nil {
		return err
	}
	defer cleanup()
	kr, err := kernel.open()
	if err != nil {
		return KernelFile.errorf(err)
	}
	defer kr.Close()
	osrel := uki.OSRelease(o.Name)
	sections := []uki.Section{
		{Name: ".osrel", Size: int64(len(osrel)), Data: bytes.NewReader(osrel)},
		{Name: ".cmdline", Size: int64(len(b.cmdline)), Data: strings.NewReader(b.cmdline)},
		{Name: ".linux", Size: kernel.size, Data: kr},
	}
	if b.initrd != "" {
		rd, err := os.Open(b.initrd)
		if err != nil {
			return err
		}
		defer rd.Close()
		rfi, err := rd.Stat()
		if err != nil {
			return err
		}
		sections = append(sections, uki.Section{Name: ".initrd", Size: rfi.Size(), Data: rd})
	}
	return writeFile(ctx, dst, func(w io.Writer) error { return uki.Write(w, stub, sections) })
}

// peKernel returns a kernel the EFI stub can start: the kernel itself, or,
// for a gzip-compressed one (arm64's Image.gz, as LinuxKit's arm64 kernels
// ship), the image decompressed into a temporary file next to near, at
// most KernelFile.Max bytes.
func peKernel(ctx context.Context, kernel *found, near string) (*found, func(), error) {
	r, err := kernel.open()
	if err != nil {
		return nil, nil, KernelFile.errorf(err)
	}
	defer r.Close()
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return kernel, func() {}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, KernelFile.errorf(fmt.Errorf("gzip: %w", err))
	}
	tmp := near + ".kernel"
	var n int64
	err = writeFile(ctx, tmp, func(w io.Writer) error {
		var err error
		n, err = io.Copy(w, io.LimitReader(zr, KernelFile.Max+1))
		if err == nil && n > KernelFile.Max {
			err = fmt.Errorf("it decompresses to more than the %d bytes allowed", KernelFile.Max)
		}
		return err
	})
	if err != nil {
		os.Remove(tmp)
		return nil, nil, KernelFile.errorf(fmt.Errorf("decompressing: %w", err))
	}
	return &found{src: tmp, size: n}, func() { os.Remove(tmp) }, nil
}

// writeUKI writes <name>.efi: EFI stub, kernel, initrd and command line in
// one EFI application.
func writeUKI(ctx context.Context, o Options) error {
	b, err := prepareBoot(ctx, o)
	if err != nil {
		return err
	}
	defer b.cleanup()
	return writeUKIFile(ctx, o, b, filepath.Join(o.Output, o.Name+".efi"))
}

// efiDisk writes a GPT disk with an EFI System Partition holding
// systemd-boot as the removable-media boot loader, the unified kernel
// image in EFI/Linux/ (where systemd-boot finds it) and loader.conf.
func efiDisk(ctx context.Context, o Options, dst string) error {
	b, err := prepareBoot(ctx, o)
	if err != nil {
		return err
	}
	defer b.cleanup()
	bootName, err := efiBootName(o.arch())
	if err != nil {
		return err
	}
	sdboot, err := bootFile(o, "systemd-boot.efi")
	if err != nil {
		return err
	}
	ukiTmp := b.initrd + ".efi"
	defer os.Remove(ukiTmp)
	if err := writeUKIFile(ctx, o, b, ukiTmp); err != nil {
		return fmt.Errorf("unified kernel image: %w", err)
	}
	return disk.Write(ctx, dst, disk.Options{
		Scheme: disk.GPT,
		Size:   o.Size,
		Label:  "LINUXKIT",
		Files: []disk.File{
			{Path: "EFI/BOOT/" + bootName, Src: sdboot},
			{Path: "EFI/Linux/linuxkit.efi", Src: ukiTmp},
			{Path: "loader/loader.conf", Data: []byte("timeout 0\n")},
		},
		ModTime: epochOrZero(o),
	})
}

// grubConfig is the grub.cfg of a BIOS disk.
func grubConfig(cmdline string) ([]byte, error) {
	if i := strings.IndexAny(cmdline, formats.GRUBUnsafe); i >= 0 {
		return nil, fmt.Errorf("kernel cmdline %q: character %q cannot be passed through the BIOS boot loader's configuration", cmdline, cmdline[i])
	}
	return []byte(fmt.Sprintf("set timeout=0\nset gfxpayload=text\nmenuentry 'LinuxKit' {\n\tlinux /kernel %s\n\tinitrd /initrd.img\n}\n", cmdline)), nil
}

// biosDisk writes an MBR disk with one bootable FAT32 partition holding
// kernel, initrd.img and boot/grub/grub.cfg; GRUB's boot.img is the MBR
// boot code and its core.img fills the gap before the partition.
func biosDisk(ctx context.Context, o Options, dst string) error {
	b, err := prepareBoot(ctx, o)
	if err != nil {
		return err
	}
	defer b.cleanup()
	cfg, err := grubConfig(b.cmdline)
	if err != nil {
		return err
	}
	bootImg, err := readBootFile(o, "grub-boot.img")
	if err != nil {
		return err
	}
	coreImg, err := readBootFile(o, "grub-core.img")
	if err != nil {
		return err
	}
	if len(bootImg) != 512 {
		return fmt.Errorf("grub-boot.img is %d bytes, want 512", len(bootImg))
	}
	return disk.Write(ctx, dst, disk.Options{
		Scheme:   disk.MBR,
		Size:     o.Size,
		Label:    "LINUXKIT",
		BootCode: bootImg[:440],
		PostMBR:  coreImg,
		Files: []disk.File{
			{Path: "kernel", Src: b.kernel.src},
			{Path: "initrd.img", Src: b.initrd},
			{Path: "boot/grub/grub.cfg", Data: cfg},
		},
		ModTime: epochOrZero(o),
	})
}

func readBootFile(o Options, name string) ([]byte, error) {
	p, err := bootFile(o, name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// rawDisk returns a Writer that writes a raw disk with mk to <name><suffix>.
func rawDisk(mk func(context.Context, Options, string) error, suffix string) Writer {
	return func(ctx context.Context, o Options) error { return mk(ctx, o, filepath.Join(o.Output, o.Name+suffix)) }
}

// convertedDisk returns a Writer that writes a raw disk with mk to a
// temporary file, then converts it with conv to <name><suffix>.
func convertedDisk(mk func(context.Context, Options, string) error, suffix string, conv func(dst io.Writer, raw *os.File, o Options) error) Writer {
	return func(ctx context.Context, o Options) error {
		tmp, err := os.CreateTemp(o.Output, ".disk-")
		if err != nil {
			return err
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := mk(ctx, o, tmp.Name()); err != nil {
			return err
		}
		raw, err := os.Open(tmp.Name())
		if err != nil {
			return err
		}
		defer raw.Close()
		return writeFile(ctx, filepath.Join(o.Output, o.Name+suffix), func(w io.Writer) error { return conv(w, raw, o) })
	}
}

// diskSeed identifies a raw disk by its first 34 sectors: the partition
// tables, which hold identifiers derived from the whole contents.
func diskSeed(raw *os.File) ([]byte, int64, error) {
	fi, err := raw.Stat()
	if err != nil {
		return nil, 0, err
	}
	seed := make([]byte, 34*512)
	if _, err := raw.ReadAt(seed, 0); err != nil {
		return nil, 0, err
	}
	return seed, fi.Size(), nil
}

func toQCOW2(w io.Writer, raw *os.File, _ Options) error {
	fi, err := raw.Stat()
	if err != nil {
		return err
	}
	return vdisk.WriteQCOW2(w, raw, fi.Size())
}

func vhdWriter(dynamic bool) func(io.Writer, *os.File, Options) error {
	return func(w io.Writer, raw *os.File, o Options) error {
		seed, size, err := diskSeed(raw)
		if err != nil {
			return err
		}
		opt := vdisk.VHDOptions{Seed: seed, Time: epochOrZero(o), AlignMiB: true}
		if dynamic {
			return vdisk.WriteDynamicVHD(w, raw, size, opt)
		}
		return vdisk.WriteVHD(w, raw, size, opt)
	}
}

func toVMDK(w io.Writer, raw *os.File, o Options) error {
	seed, size, err := diskSeed(raw)
	if err != nil {
		return err
	}
	return vdisk.WriteVMDK(w, raw, size, vdisk.VMDKOptions{Seed: seed, ExtentName: o.Name + ".vmdk"})
}

// toGCP writes the tar.gz Google Compute Engine imports: one file named
// disk.raw.
func toGCP(w io.Writer, raw *os.File, o Options) error {
	fi, err := raw.Stat()
	if err != nil {
		return err
	}
	zw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
	if err != nil {
		return err
	}
	zw.ModTime = time.Unix(0, 0)
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: "disk.raw", Mode: 0o644, Size: fi.Size(), ModTime: epochOrZero(o), Format: tar.FormatGNU}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, raw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
